-- Cache keys.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Cache keys
-- ===========================================================================

-- sha256 (hex) of the canonical jsonb {function, model, parameters}, where
-- parameters keeps only the keys that change the output:
--   generate: prompt, max_tokens, seed        embed: text_input
--   generate_json: + schema   generate_regex: + pattern
--   generate_choice: + choices                rerank: query, documents, task, seed
-- jsonb's text form is canonical (sorted keys, one spacing), so equal inputs
-- give equal keys. Returns NULL when any argument is NULL; raises 22023 for an
-- unknown function_name. The worker stores results under this key.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_cache_key(function_name text, model_id text, parameters jsonb)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keys text[];
    kept jsonb;
BEGIN
    keys := CASE function_name
        WHEN 'generate'        THEN ARRAY['prompt', 'max_tokens', 'seed']
        WHEN 'generate_json'   THEN ARRAY['prompt', 'max_tokens', 'seed', 'schema']
        WHEN 'generate_regex'  THEN ARRAY['prompt', 'max_tokens', 'seed', 'pattern']
        WHEN 'generate_choice' THEN ARRAY['prompt', 'max_tokens', 'seed', 'choices']
        WHEN 'embed'           THEN ARRAY['text_input']
        WHEN 'rerank'          THEN ARRAY['query', 'documents', 'task', 'seed']
    END;
    IF keys IS NULL THEN
        RAISE EXCEPTION 'steadytext_cache_key: function_name % is not a steadytext function', quote_literal(function_name)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb) INTO kept
    FROM jsonb_each(parameters) AS e
    WHERE e.key = ANY (keys);
    RETURN encode(sha256(convert_to(
        jsonb_build_object('function', function_name, 'model', model_id, 'parameters', kept)::text,
        'UTF8')), 'hex');
END;
$$;
