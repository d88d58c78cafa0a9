-- The async functions: generation, embeddings, structured, batch, rerank.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Core async functions: text generation, embeddings
-- ===========================================================================
-- Every enqueue function hands its arguments, as jsonb keyed by argument
-- name, to a SECURITY DEFINER helper that validates all of them before
-- writing anything (_steadytext_validate: one validation path per function):
-- NULL -> 22004, bad value -> 22023, over a limit -> 54000 (see
-- steadytext_limits()); the message names the function and the argument.

-- Returns the new request's id. Raises 22004/22023/54000 for bad arguments,
-- 54000 when steadytext.max_queue_size is reached.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_async(
    prompt TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue('steadytext_generate_async', 'generate',
        jsonb_build_object('prompt', prompt, 'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        priority);
END;
$$;

-- Returns the new request's id (result: pgvector text '[...]'). Raises
-- 22004/22023/54000 for bad arguments or a full queue.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_embed_async(
    text_input TEXT,
    use_cache BOOLEAN DEFAULT true,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue('steadytext_embed_async', 'embed',
        jsonb_build_object('text_input', text_input, 'use_cache', use_cache),
        priority);
END;
$$;

-- ===========================================================================
-- Structured generation
-- ===========================================================================

-- Returns the new request's id (result: a JSON document matching schema).
-- Raises 0A000 for $ref, 54000 for a too big / too deep schema, 22023 for a
-- malformed one, and as steadytext_generate_async for the rest.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_json_async(
    prompt TEXT,
    schema JSONB,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue('steadytext_generate_json_async', 'generate_json',
        jsonb_build_object('prompt', prompt, 'schema', steadytext_generate_json_async.schema,
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        priority);
END;
$$;

-- Returns the new request's id (result: text matching pattern in full).
-- Raises 22023 for a malformed pattern or a max_tokens below its shortest
-- match, 0A000 for constructs outside the supported dialect (backreferences,
-- lookaround, word boundaries, lazy quantifiers, \p, inner anchors; see
-- docs/limits.md), 54000 for a pattern too big, and as steadytext_generate_async.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_regex_async(
    prompt TEXT,
    pattern TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue('steadytext_generate_regex_async', 'generate_regex',
        jsonb_build_object('prompt', prompt, 'pattern', pattern,
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        priority);
END;
$$;

-- Returns the new request's id (result: exactly one of choices). Raises
-- 22004 for NULL choices or a NULL choice, 22023 for none / an empty or
-- duplicate choice, 54000 for more than max_choices, and as
-- steadytext_generate_async.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_choice_async(
    prompt TEXT,
    choices TEXT[],
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue('steadytext_generate_choice_async', 'generate_choice',
        jsonb_build_object('prompt', prompt, 'choices', to_jsonb(choices),
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        priority);
END;
$$;

-- ===========================================================================
-- Batch operations
-- ===========================================================================

-- Returns one request id per prompt, in prompt order ('{}' for an empty
-- array); the requests share one batch_id. Every prompt is validated before
-- anything is written: NULL array or prompt -> 22004, empty prompt -> 22023,
-- more than max_batch_items or a prompt over max_prompt_bytes -> 54000.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_batch_async(
    prompts TEXT[],
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue_batch('steadytext_generate_batch_async', 'generate',
        jsonb_build_object('max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        prompts, priority);
END;
$$;

-- Returns one embed request id per text, in order ('{}' for an empty array);
-- shared batch_id. Raises as steadytext_generate_batch_async (argument texts).
CREATE OR REPLACE FUNCTION @extschema@.steadytext_embed_batch_async(
    texts TEXT[],
    use_cache BOOLEAN DEFAULT true,
    priority INTEGER DEFAULT 0
) RETURNS UUID[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue_batch('steadytext_embed_batch_async', 'embed',
        jsonb_build_object('use_cache', use_cache),
        texts, priority);
END;
$$;

-- ===========================================================================
-- Reranking
-- ===========================================================================

-- Returns the new request's id (result: JSON [{"document","score","index"}],
-- best first). Raises 22004 for NULL documents or a NULL document, 22023 for
-- no documents, 54000 for more than max_rerank_documents or one over
-- max_prompt_bytes, and 22004/22023/54000 for query/task/seed/priority.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_rerank_async(
    query TEXT,
    documents TEXT[],
    task TEXT DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue('steadytext_rerank_async', 'rerank',
        jsonb_build_object('query', steadytext_rerank_async.query, 'documents', to_jsonb(documents),
                           'task', task, 'use_cache', use_cache, 'seed', seed),
        priority);
END;
$$;
