-- Enqueue internals.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Enqueue internals
-- ===========================================================================

-- Inserts one request owned by `caller` (see _steadytext_caller), after
-- validating every argument itself (_steadytext_validate, then priority), so
-- a direct call stores nothing the public function would refuse. Born
-- 'completed' from steadytext_cache on a hit (when use_cache; the hit is
-- recorded by _steadytext_cache_hit, no lock taken), else 'pending' with a NOTIFY
-- steadytext_new_job (delivered at commit) after the queue limits are checked
-- (_steadytext_check_queue_size). SECURITY DEFINER: callers cannot read the
-- cache or write the queue themselves; cache_key is computed here from the
-- very parameters the worker will run (scoped per steadytext_config
-- 'cache_scope').
CREATE OR REPLACE FUNCTION @extschema@._steadytext_enqueue(fn text, function_name text, parameters jsonb,
                                                          priority integer, caller name DEFAULT current_user)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner constant name := @extschema@._steadytext_caller(caller);
    model text;
    key text;
    cached text;
    id uuid;
BEGIN
    PERFORM @extschema@._steadytext_validate(fn, function_name, parameters);
    PERFORM @extschema@._steadytext_check_priority(fn, priority);
    SELECT k.model_id, k.cache_key INTO model, key FROM @extschema@._steadytext_request_key(function_name, parameters, owner) AS k;
    IF (parameters ->> 'use_cache')::boolean THEN
        cached := @extschema@._steadytext_cache_hit(key);
        IF cached IS NOT NULL THEN
            INSERT INTO @extschema@.steadytext_queue AS q
                (function_name, parameters, status, priority, result, started_at, completed_at, cache_key, model_id,
                 owner_role)
            VALUES (_steadytext_enqueue.function_name, _steadytext_enqueue.parameters, 'completed',
                    _steadytext_enqueue.priority, cached, now(), now(), key, model, owner)
            RETURNING q.request_id INTO id;
            RETURN id;
        END IF;
    END IF;
    PERFORM @extschema@._steadytext_check_queue_size(fn, 1, owner);
    INSERT INTO @extschema@.steadytext_queue AS q (function_name, parameters, priority, cache_key, model_id, owner_role)
    VALUES (_steadytext_enqueue.function_name, _steadytext_enqueue.parameters,
            _steadytext_enqueue.priority, key, model, owner)
    RETURNING q.request_id INTO id;
    PERFORM pg_notify('steadytext_new_job', '');
    RETURN id;
END;
$$;

-- Inserts one request per item in one INSERT ... SELECT over
-- unnest(items) WITH ORDINALITY, sharing a batch_id, batch_index = position
-- (0-based). function_name is one with a batch form ('generate', items:
-- the prompts; 'embed', items: the texts; the arms below are written from
-- src/jobTypes.ts by `npm run build:sql`); each item's parameters are `base`
-- plus {prompt|text_input: item}. Validates everything itself first, in the
-- public function's order (the items, then base's arguments, then
-- priority). Items found in steadytext_cache (when use_cache) are born
-- 'completed'. created_at is spaced 1 microsecond apart in item order so
-- that the claim order (priority DESC, created_at) is the item order.
-- Returns the request ids in item order. The queue limits count every item
-- of the batch. Rows are owned by `caller`; SECURITY DEFINER as
-- _steadytext_enqueue.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_enqueue_batch(fn text, function_name text, base jsonb,
                                                                items text[], priority integer,
                                                                caller name DEFAULT current_user)
RETURNS uuid[]
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner constant name := @extschema@._steadytext_caller(caller);
    -- the argument each item fills, and the public function's name for the items
    item_key constant text := CASE function_name
        -- @job-types batch-items
    END;
    items_arg constant text := CASE function_name
        -- @job-types batch-arguments
    END;
    model text;
    batch uuid := gen_random_uuid();
    use_cache boolean;
    ids uuid[];
    pending bigint;
    scope text;
    kept jsonb;
    keys text[];
BEGIN
    IF item_key IS NULL THEN
        RAISE EXCEPTION '%: function_name % has no batch form', fn, coalesce(quote_literal(function_name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF base IS NULL OR jsonb_typeof(base) <> 'object' OR base ? item_key THEN
        RAISE EXCEPTION '%: base must be a JSON object without %', fn, item_key
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@._steadytext_check_text_array(fn, items_arg,
        items, @extschema@._steadytext_limit('max_batch_items'), 'steadytext.max_batch_items', true, false);
    PERFORM @extschema@._steadytext_validate(fn, function_name, base, ARRAY[item_key]);
    PERFORM @extschema@._steadytext_check_priority(fn, priority);
    IF cardinality(items) = 0 THEN
        RETURN '{}'::uuid[];
    END IF;
    PERFORM @extschema@._steadytext_check_queue_size(fn, cardinality(items), owner);
    model := @extschema@._steadytext_model_id(@extschema@._steadytext_model_role(function_name));
    use_cache := (base ->> 'use_cache')::boolean;
    scope := @extschema@._steadytext_cache_scope();
    -- the shared arguments' part of every item's cache key, filtered once
    kept := @extschema@._steadytext_cache_parameters(function_name, base);
    keys := @extschema@._steadytext_cache_digests(function_name, model,
        ARRAY(SELECT kept || jsonb_build_object(item_key, u.item) FROM unnest(items) WITH ORDINALITY AS u(item, ord)
              ORDER BY u.ord));
    -- Each item next to its key (unnest of both arrays): keys[ord] would walk
    -- the array of variable-length keys from its start on every item.
    WITH it AS MATERIALIZED (
        SELECT u.ord, base || jsonb_build_object(item_key, u.item) AS parameters,
               CASE WHEN coalesce(scope, 'shared') = 'shared' THEN u.key
                    ELSE @extschema@._steadytext_scope_key(u.key, owner, scope)
               END AS cache_key
        FROM unnest(items, keys) WITH ORDINALITY AS u(item, key, ord)
    ), wanted AS (
        SELECT it.cache_key, count(*) AS n FROM it WHERE use_cache GROUP BY it.cache_key
    ), hits AS (
        SELECT c.cache_key, c.result, wanted.n
        FROM wanted JOIN @extschema@.steadytext_cache AS c ON c.cache_key = wanted.cache_key
    ), counted AS (
        -- one access per item that hits (duplicate items count once each),
        -- appended: no cache entry is locked (see steadytext_cache_hits)
        INSERT INTO @extschema@.steadytext_cache_hits (cache_key, hits)
        SELECT hits.cache_key, hits.n FROM hits
    ), ins AS (
        INSERT INTO @extschema@.steadytext_queue AS q
            (function_name, parameters, status, priority, result, created_at, started_at, completed_at,
             batch_id, batch_index, cache_key, model_id, owner_role)
        SELECT _steadytext_enqueue_batch.function_name, it.parameters,
               CASE WHEN hits.result IS NULL THEN 'pending' ELSE 'completed' END,
               _steadytext_enqueue_batch.priority, hits.result,
               now() + (it.ord - 1) * interval '1 microsecond',
               CASE WHEN hits.result IS NOT NULL THEN now() END,
               CASE WHEN hits.result IS NOT NULL THEN now() END,
               batch, (it.ord - 1)::integer, it.cache_key, model, owner
        FROM it LEFT JOIN hits ON hits.cache_key = it.cache_key
        ORDER BY it.ord
        RETURNING q.request_id, q.batch_index, q.status
    )
    SELECT array_agg(ins.request_id ORDER BY ins.batch_index),
           count(*) FILTER (WHERE ins.status = 'pending')
    INTO ids, pending
    FROM ins;
    IF pending > 0 THEN
        PERFORM pg_notify('steadytext_new_job', '');
    END IF;
    RETURN ids;
END;
$$;
