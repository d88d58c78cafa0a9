-- Cache keys.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Cache keys
-- ===========================================================================

-- The parameters that change the output of `function_name` (every argument
-- but use_cache), the only ones a cache key covers. Returns NULL when any
-- argument is NULL; raises 22023 for an unknown function_name. (The arms are
-- written from src/jobTypes.ts by `npm run build:sql`.)
CREATE OR REPLACE FUNCTION @extschema@._steadytext_cache_parameters(function_name text, parameters jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keys text[];
    kept jsonb;
BEGIN
    keys := CASE function_name
        -- @job-types cache-arguments
    END;
    IF keys IS NULL THEN
        RAISE EXCEPTION 'steadytext_cache_key: function_name % is not a steadytext function', quote_literal(function_name)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb) INTO kept
    FROM jsonb_each(parameters) AS e
    WHERE e.key = ANY (keys);
    RETURN kept;
END;
$$;

-- sha256 (hex) of the canonical jsonb {function, model, parameters: kept} for
-- each `kept` (each being _steadytext_cache_parameters(function_name, ...)),
-- in order. jsonb's text form is canonical (sorted keys, one spacing), so
-- equal inputs give equal keys. One call digests a whole batch (the batch
-- enqueue filters its shared arguments once and passes kept || {prompt|
-- text_input: item} per item); steadytext_cache_key passes one.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_cache_digests(function_name text, model_id text, kept jsonb[])
RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(encode(sha256(convert_to(
               jsonb_build_object('function', function_name, 'model', model_id, 'parameters', k.kept)::text,
               'UTF8')), 'hex') ORDER BY k.ord), '{}')
    FROM unnest(kept) WITH ORDINALITY AS k(kept, ord)
$$;

-- The cache key of a request: the digest (_steadytext_cache_digests) of the
-- parameters that change the output (_steadytext_cache_parameters). Returns NULL when
-- any argument is NULL; raises 22023 for an unknown function_name. The
-- worker stores results under this key.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_cache_key(function_name text, model_id text, parameters jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (@extschema@._steadytext_cache_digests(function_name, model_id,
                ARRAY[@extschema@._steadytext_cache_parameters(function_name, parameters)]))[1]
$$;

-- `key` as a request of `owner` stores and looks it up under cache scope
-- `scope` (steadytext_config 'cache_scope'; NULL means 'shared'): the key
-- itself when 'shared' (the default: identical requests of different roles
-- share one entry, so a role can tell whether anyone asked the same before),
-- or the key hashed with the owner role when 'role' (no role sees another's
-- entries; the same prompt is computed once per role). Set by an admin
-- (docs/security.md); any other value raises 22023.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_scope_key(key text, owner name, scope text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF coalesce(scope, 'shared') = 'shared' THEN
        RETURN key;
    ELSIF scope = 'role' THEN
        RETURN encode(sha256(convert_to(key || ' role ' || owner, 'UTF8')), 'hex');
    END IF;
    RAISE EXCEPTION 'steadytext_config cache_scope must be ''shared'' or ''role'', got %', quote_literal(scope)
        USING ERRCODE = 'invalid_parameter_value';
END;
$$;

-- The current cache scope (steadytext_config 'cache_scope'), NULL when unset.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_cache_scope()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.value #>> '{}' FROM @extschema@.steadytext_config AS c WHERE c.key = 'cache_scope'
$$;

-- The cache key a request of `owner` is stored and looked up under:
-- steadytext_cache_key(...) scoped by _steadytext_scope_key.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_scoped_cache_key(function_name text, model_id text,
                                                                   parameters jsonb, owner name)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_scope_key(@extschema@.steadytext_cache_key(function_name, model_id, parameters),
                                             owner, @extschema@._steadytext_cache_scope())
$$;

-- The model id a request of `function_name` runs on now and its cache key
-- for `owner`: what an enqueue stores, a cache lookup asks for, and a retry
-- or a hand-off copy derives again.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_request_key(function_name text, parameters jsonb, owner name,
                                                              OUT model_id text, OUT cache_key text)
RETURNS record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.id, @extschema@._steadytext_scoped_cache_key(function_name, m.id, parameters, owner)
    FROM (SELECT @extschema@._steadytext_model_id(@extschema@._steadytext_model_role(function_name)) AS id) AS m
$$;
