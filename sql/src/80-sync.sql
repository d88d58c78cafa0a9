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
-- failed, STX02 cancelled, STX03 not finished in time).

-- steadytext.sync_timeout_seconds as an integer >= 0; 22023 otherwise.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_sync_timeout(fn text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v bigint := @extschema@._steadytext_limit('sync_timeout_seconds');
BEGIN
    IF v < 0 OR v > 2147483647 THEN
        RAISE EXCEPTION '%: steadytext.sync_timeout_seconds must be between 0 and 2147483647, got %', fn, v
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v::integer;
END;
$$;

-- Validates a synchronous call's arguments (as the async twin would, naming
-- `fn`) and, when use_cache, returns the cached result for them (the hit
-- recorded by _steadytext_cache_hit, no lock taken; the key scoped per steadytext_config
-- 'cache_scope' for `caller`); NULL on a miss. SECURITY DEFINER (callers
-- cannot read steadytext_cache): it answers only the question an enqueue
-- would answer for the same, valid arguments.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_cache_lookup(fn text, function_name text, parameters jsonb,
                                                               caller name DEFAULT current_user)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner constant name := @extschema@._steadytext_caller(caller);
BEGIN
    PERFORM @extschema@._steadytext_validate(fn, function_name, parameters);
    IF NOT (parameters ->> 'use_cache')::boolean THEN
        RETURN NULL;
    END IF;
    RETURN @extschema@._steadytext_cache_hit(
        (@extschema@._steadytext_request_key(function_name, parameters, owner)).cache_key);
END;
$$;

-- Raises 55000 unless a worker is 'running' with a heartbeat within its
-- heartbeat_timeout_seconds (on the wall clock, not the transaction's) that
-- takes jobs of `function_name` (served_functions NULL or naming it: a
-- worker whose inference server refuses a type does not claim it).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_require_worker(fn text, function_name text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    live bigint;
    serving bigint;
BEGIN
    SELECT count(*),
           count(*) FILTER (WHERE w.served_functions IS NULL
                                  OR _steadytext_require_worker.function_name = ANY (w.served_functions))
    INTO live, serving
    FROM @extschema@.steadytext_workers AS w
    WHERE w.status = 'running'
      AND NOT @extschema@._steadytext_heartbeat_lost(w.last_heartbeat, w.heartbeat_timeout_seconds, clock_timestamp());
    IF live = 0 THEN
        RAISE EXCEPTION '%: no steadytext worker is running: start one with `steadytext worker` (or `steadytext up`)', fn
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'SELECT * FROM steadytext_worker_status() lists the workers seen in the last hour; a cached result (use_cache) is answered without one.';
    ELSIF serving = 0 THEN
        RAISE EXCEPTION '%: none of the % running steadytext workers takes % jobs (their engines refuse them)', fn, live, function_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Start a worker whose engine serves %s (the local engine serves every type); `steadytext status` lists what each worker takes.', function_name);
    END IF;
END;
$$;

-- The synchronous path shared by the functions below: validates the
-- arguments and answers from the cache (_steadytext_cache_lookup), else
-- needs a live worker and dblink, enqueues (validated again, by the helper
-- that writes) and waits. Returns the result text.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_sync(fn text, function_name text, parameters jsonb)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    timeout integer;
    cached text;
    id uuid;
BEGIN
    cached := @extschema@._steadytext_cache_lookup(fn, function_name, parameters);
    IF cached IS NOT NULL THEN
        RETURN cached;
    END IF;
    timeout := @extschema@._steadytext_sync_timeout(fn);
    PERFORM @extschema@._steadytext_require_worker(fn, function_name);
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension AS e WHERE e.extname = 'dblink') THEN
        RAISE EXCEPTION '%: waiting for a worker inside one statement needs the dblink extension', fn
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run CREATE EXTENSION dblink (see the request-response hand-off in docs/sql-reference.md), or use the _async function and wait after committing.';
    END IF;
    id := @extschema@._steadytext_enqueue(fn, function_name, parameters, 0);
    RETURN @extschema@.steadytext_get_async_result(id, timeout);
END;
$$;

-- The synchronous twins, written from the job-type catalog (src/jobTypes.ts)
-- by the build, in catalog order:
-- @job-types sync-functions
