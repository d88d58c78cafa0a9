-- Synchronous functions.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Synchronous functions: the async twins, enqueued and waited on
-- ===========================================================================
-- steadytext_generate, _generate_json, _generate_regex, _generate_choice,
-- _embed and _rerank take their async twin's arguments (same names and
-- defaults) minus priority, and return the result. A cache hit (use_cache)
-- is answered at once, with no worker and no queue row. Otherwise, with a
-- live worker, the request is enqueued and waited on for
-- steadytext.sync_timeout_seconds (default 30) through the request-response
-- hand-off (the row is always the caller's own uncommitted one, so dblink is
-- needed). Raises: the twin's argument errors (naming the sync function),
-- 55000 when no worker is running or dblink is missing (both checked before
-- anything is written), and what steadytext_get_async_result raises (STX01
-- failed, STX02 cancelled, 57014 timeout).

-- steadytext.sync_timeout_seconds as an integer >= 0; 22023 otherwise.
CREATE OR REPLACE FUNCTION _steadytext_sync_timeout(fn text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    v bigint := _steadytext_limit('sync_timeout_seconds');
BEGIN
    IF v < 0 OR v > 2147483647 THEN
        RAISE EXCEPTION '%: steadytext.sync_timeout_seconds must be between 0 and 2147483647, got %', fn, v
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v::integer;
END;
$$;

-- The cached result for (function_name, model of role, parameters), bumping
-- the entry's access_count/last_accessed; NULL on a miss. SECURITY DEFINER
-- (callers cannot read steadytext_cache): it answers only the question an
-- enqueue would answer for the same arguments.
CREATE OR REPLACE FUNCTION _steadytext_cache_lookup(function_name text, role text, parameters jsonb)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    key text := steadytext_cache_key(function_name, _steadytext_model_id(role), parameters);
    cached text;
BEGIN
    UPDATE steadytext_cache AS c
    SET access_count = c.access_count + 1, last_accessed = now()
    WHERE c.cache_key = key
    RETURNING c.result INTO cached;
    RETURN cached;
END;
$$;

-- Raises 55000 unless a worker is 'running' with a heartbeat within its
-- heartbeat_timeout_seconds (on the wall clock, not the transaction's).
CREATE OR REPLACE FUNCTION _steadytext_require_worker(fn text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM steadytext_workers AS w
        WHERE w.status = 'running'
          AND w.last_heartbeat >= clock_timestamp() - w.heartbeat_timeout_seconds * interval '1 second')
    THEN
        RAISE EXCEPTION '%: no steadytext worker is running: start one with `steadytext worker` (or `steadytext up`)', fn
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'SELECT * FROM steadytext_worker_status() lists the workers seen in the last hour; a cached result (use_cache) is answered without one.';
    END IF;
END;
$$;

-- The synchronous path shared by the functions below; the caller has
-- validated the arguments. Returns the result text.
CREATE OR REPLACE FUNCTION _steadytext_sync(fn text, function_name text, role text, parameters jsonb, use_cache boolean)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    timeout integer := _steadytext_sync_timeout(fn);
    cached text;
    id uuid;
BEGIN
    IF use_cache THEN
        cached := _steadytext_cache_lookup(function_name, role, parameters);
        IF cached IS NOT NULL THEN
            RETURN cached;
        END IF;
    END IF;
    PERFORM _steadytext_require_worker(fn);
    IF NOT EXISTS (SELECT 1 FROM pg_extension AS e WHERE e.extname = 'dblink') THEN
        RAISE EXCEPTION '%: waiting for a worker inside one statement needs the dblink extension', fn
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run CREATE EXTENSION dblink (see the request-response hand-off in docs/sql-reference.md), or use the _async function and wait after committing.';
    END IF;
    id := _steadytext_enqueue(fn, function_name, role, parameters, use_cache, 0);
    RETURN steadytext_get_async_result(id, timeout);
END;
$$;

-- The generated text. Raises as steadytext_generate_async for bad
-- arguments, and as described above.
CREATE OR REPLACE FUNCTION steadytext_generate(
    prompt TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TEXT
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    RETURN _steadytext_sync(fn, 'generate', 'generation',
        jsonb_build_object('prompt', prompt, 'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache);
END;
$$;

-- The JSON document (text) matching schema. Raises as
-- steadytext_generate_json_async for bad arguments.
CREATE OR REPLACE FUNCTION steadytext_generate_json(
    prompt TEXT,
    schema JSONB,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TEXT
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_json';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_schema(fn, steadytext_generate_json.schema);
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM @extschema@._steadytext_check_schema_budget(fn, steadytext_generate_json.schema, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    RETURN _steadytext_sync(fn, 'generate_json', 'generation',
        jsonb_build_object('prompt', prompt, 'schema', steadytext_generate_json.schema,
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache);
END;
$$;

-- Text matching pattern in full. Raises as steadytext_generate_regex_async
-- for bad arguments.
CREATE OR REPLACE FUNCTION steadytext_generate_regex(
    prompt TEXT,
    pattern TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TEXT
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_regex';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_pattern(fn, pattern);
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM @extschema@._steadytext_check_pattern_budget(fn, pattern, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    RETURN _steadytext_sync(fn, 'generate_regex', 'generation',
        jsonb_build_object('prompt', prompt, 'pattern', pattern,
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache);
END;
$$;

-- Exactly one of choices. Raises as steadytext_generate_choice_async for bad
-- arguments.
CREATE OR REPLACE FUNCTION steadytext_generate_choice(
    prompt TEXT,
    choices TEXT[],
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TEXT
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_choice';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_choices(fn, choices);
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    RETURN _steadytext_sync(fn, 'generate_choice', 'generation',
        jsonb_build_object('prompt', prompt, 'choices', to_jsonb(choices),
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache);
END;
$$;

-- The L2-normalised embedding as real[]. With pgvector installed,
-- steadytext_embed(...)::vector converts it (pgvector's real[] -> vector
-- cast). Raises as steadytext_embed_async for bad arguments.
CREATE OR REPLACE FUNCTION steadytext_embed(
    text_input TEXT,
    use_cache BOOLEAN DEFAULT true
) RETURNS REAL[]
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_embed';
BEGIN
    PERFORM _steadytext_check_text(fn, 'text_input', text_input, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    RETURN translate(_steadytext_sync(fn, 'embed', 'embedding',
        jsonb_build_object('text_input', text_input, 'use_cache', use_cache), use_cache), '[]', '{}')::real[];
END;
$$;

-- One row per document, best first: (document, score). Raises as
-- steadytext_rerank_async for bad arguments.
CREATE OR REPLACE FUNCTION steadytext_rerank(
    query TEXT,
    documents TEXT[],
    task TEXT DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TABLE(document TEXT, score DOUBLE PRECISION)
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_rerank';
    ranked text;
BEGIN
    PERFORM _steadytext_check_text(fn, 'query', steadytext_rerank.query, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_text_array(fn, 'documents', documents, _steadytext_limit('max_rerank_documents'),
                                         'steadytext.max_rerank_documents', false, true);
    PERFORM _steadytext_check_text(fn, 'task', task, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    ranked := _steadytext_sync(fn, 'rerank', 'reranking',
        jsonb_build_object('query', steadytext_rerank.query, 'documents', to_jsonb(documents),
                           'task', task, 'use_cache', use_cache, 'seed', seed),
        use_cache);
    RETURN QUERY
    SELECT e.value ->> 'document', (e.value ->> 'score')::double precision
    FROM jsonb_array_elements(ranked::jsonb) WITH ORDINALITY AS e(value, ord)
    ORDER BY e.ord;
END;
$$;
