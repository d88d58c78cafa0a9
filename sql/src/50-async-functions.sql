-- The async functions: generation, embeddings, structured, batch, rerank.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Core async functions: text generation, embeddings
-- ===========================================================================
-- Every enqueue function validates all of its arguments before writing
-- anything: NULL -> 22004, bad value -> 22023, over a limit -> 54000 (see
-- steadytext_limits()); the message names the argument.

-- Returns the new request's id. Raises 22004/22023/54000 for bad arguments,
-- 54000 when steadytext.max_queue_size is reached.
CREATE OR REPLACE FUNCTION steadytext_generate_async(
    prompt TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_async';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue(fn, 'generate', 'generation',
        jsonb_build_object('prompt', prompt, 'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache, priority);
END;
$$;

-- Returns the new request's id (result: pgvector text '[...]'). Raises
-- 22004/22023/54000 for bad arguments or a full queue.
CREATE OR REPLACE FUNCTION steadytext_embed_async(
    text_input TEXT,
    use_cache BOOLEAN DEFAULT true,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_embed_async';
BEGIN
    PERFORM _steadytext_check_text(fn, 'text_input', text_input, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue(fn, 'embed', 'embedding',
        jsonb_build_object('text_input', text_input, 'use_cache', use_cache),
        use_cache, priority);
END;
$$;

-- ===========================================================================
-- Structured generation
-- ===========================================================================

-- Returns the new request's id (result: a JSON document matching schema).
-- Raises 0A000 for $ref, 54000 for a too big / too deep schema, 22023 for a
-- malformed one, and as steadytext_generate_async for the rest.
CREATE OR REPLACE FUNCTION steadytext_generate_json_async(
    prompt TEXT,
    schema JSONB,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_json_async';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_schema(fn, steadytext_generate_json_async.schema);
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM @extschema@._steadytext_check_schema_budget(fn, steadytext_generate_json_async.schema, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue(fn, 'generate_json', 'generation',
        jsonb_build_object('prompt', prompt, 'schema', steadytext_generate_json_async.schema,
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache, priority);
END;
$$;

-- Returns the new request's id (result: text matching pattern in full).
-- Raises 2201B for a pattern PostgreSQL cannot compile, 0A000 for constructs
-- outside the supported subset (backreferences, lookaround, word boundaries,
-- lazy quantifiers, \p, inner anchors), and as steadytext_generate_async.
CREATE OR REPLACE FUNCTION steadytext_generate_regex_async(
    prompt TEXT,
    pattern TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_regex_async';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_pattern(fn, pattern);
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM @extschema@._steadytext_check_pattern_budget(fn, pattern, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue(fn, 'generate_regex', 'generation',
        jsonb_build_object('prompt', prompt, 'pattern', pattern,
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache, priority);
END;
$$;

-- Returns the new request's id (result: exactly one of choices). Raises
-- 22004 for NULL choices or a NULL choice, 22023 for none / an empty or
-- duplicate choice, 54000 for more than max_choices, and as
-- steadytext_generate_async.
CREATE OR REPLACE FUNCTION steadytext_generate_choice_async(
    prompt TEXT,
    choices TEXT[],
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_choice_async';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_choices(fn, choices);
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue(fn, 'generate_choice', 'generation',
        jsonb_build_object('prompt', prompt, 'choices', to_jsonb(choices),
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache, priority);
END;
$$;

-- ===========================================================================
-- Batch operations
-- ===========================================================================

-- Returns one request id per prompt, in prompt order ('{}' for an empty
-- array); the requests share one batch_id. Every prompt is validated before
-- anything is written: NULL array or prompt -> 22004, empty prompt -> 22023,
-- more than max_batch_items or a prompt over max_prompt_bytes -> 54000.
CREATE OR REPLACE FUNCTION steadytext_generate_batch_async(
    prompts TEXT[],
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID[]
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_batch_async';
BEGIN
    PERFORM _steadytext_check_text_array(fn, 'prompts', prompts, _steadytext_limit('max_batch_items'),
                                         'steadytext.max_batch_items', true, false);
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue_batch(fn, 'generate', 'generation',
        jsonb_build_object('max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        'prompt', prompts, use_cache, priority);
END;
$$;

-- Returns one embed request id per text, in order ('{}' for an empty array);
-- shared batch_id. Raises as steadytext_generate_batch_async (argument texts).
CREATE OR REPLACE FUNCTION steadytext_embed_batch_async(
    texts TEXT[],
    use_cache BOOLEAN DEFAULT true,
    priority INTEGER DEFAULT 0
) RETURNS UUID[]
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_embed_batch_async';
BEGIN
    PERFORM _steadytext_check_text_array(fn, 'texts', texts, _steadytext_limit('max_batch_items'),
                                         'steadytext.max_batch_items', true, false);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue_batch(fn, 'embed', 'embedding',
        jsonb_build_object('use_cache', use_cache),
        'text_input', texts, use_cache, priority);
END;
$$;

-- ===========================================================================
-- Reranking
-- ===========================================================================

-- Returns the new request's id (result: JSON [{"document","score","index"}],
-- best first). Raises 22004 for NULL documents or a NULL document, 22023 for
-- no documents, 54000 for more than max_rerank_documents or one over
-- max_prompt_bytes, and 22004/22023/54000 for query/task/seed/priority.
CREATE OR REPLACE FUNCTION steadytext_rerank_async(
    query TEXT,
    documents TEXT[],
    task TEXT DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_rerank_async';
BEGIN
    PERFORM _steadytext_check_text(fn, 'query', steadytext_rerank_async.query, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_text_array(fn, 'documents', documents, _steadytext_limit('max_rerank_documents'),
                                         'steadytext.max_rerank_documents', false, true);
    PERFORM _steadytext_check_text(fn, 'task', task, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue(fn, 'rerank', 'reranking',
        jsonb_build_object('query', steadytext_rerank_async.query, 'documents', to_jsonb(documents),
                           'task', task, 'use_cache', use_cache, 'seed', seed),
        use_cache, priority);
END;
$$;
