-- Worker liveness.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- The heartbeat rule: one home
-- ===========================================================================

-- True when a worker whose last heartbeat is `last_heartbeat` and whose own
-- timeout is `timeout_seconds` counts as lost at time `at`: its heartbeat is
-- older than its timeout. steadytext_worker_status() ('dead'), the
-- synchronous functions' worker check and the worker's reclaim of lost
-- workers' jobs all ask this function, so they agree on who is alive (each
-- passes the clock it needs: now() for one consistent statement,
-- clock_timestamp() for a wait that outlives its transaction's start).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_heartbeat_lost(last_heartbeat timestamptz,
                                                                 timeout_seconds integer, at timestamptz)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT last_heartbeat < at - timeout_seconds * interval '1 second'
$$;
