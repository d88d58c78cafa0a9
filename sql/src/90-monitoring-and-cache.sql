-- Monitoring and cache maintenance.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Monitoring (Troubleshooting)
-- ===========================================================================

-- One row per worker seen in the last hour. status is the worker's own,
-- except 'dead' for a 'running' worker whose last_heartbeat is older than its
-- heartbeat_timeout_seconds. Raises nothing.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_worker_status()
RETURNS TABLE(
    worker_id text,
    host text,
    pid integer,
    started_at timestamptz,
    last_heartbeat timestamptz,
    jobs_completed bigint,
    jobs_failed bigint,
    current_jobs integer,
    status text
)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT w.worker_id, w.host, w.pid, w.started_at, w.last_heartbeat,
           w.jobs_completed, w.jobs_failed, w.current_jobs,
           CASE WHEN w.status = 'running'
                 AND @extschema@._steadytext_heartbeat_lost(w.last_heartbeat, w.heartbeat_timeout_seconds, now())
                THEN 'dead' ELSE w.status END
    FROM @extschema@.steadytext_workers AS w
    WHERE w.last_heartbeat >= now() - interval '1 hour'
    ORDER BY w.started_at, w.worker_id
$$;

-- One row per (function_name, status) present in the queue: count; for
-- 'pending', the age of the oldest; for 'completed', the average and 95th
-- percentile of completed_at - started_at over jobs completed in the last
-- hour (NULL otherwise). Raises nothing.
-- Counts requests, not rows: the request-response hand-off answers a request
-- through a committed copy (handoff_of = the original), which counts only
-- while its original is not visible (the waiting transaction has not
-- committed yet, or rolled back); once both are there, the original alone.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_queue_stats()
RETURNS TABLE(
    function_name text,
    status text,
    count bigint,
    oldest_pending_age_seconds double precision,
    avg_processing_seconds double precision,
    p95_processing_seconds double precision
)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT q.function_name, q.status, count(*),
           CASE WHEN q.status = 'pending'
                THEN extract(epoch FROM now() - min(q.created_at))::double precision END,
           avg(extract(epoch FROM q.completed_at - q.started_at)::double precision)
               FILTER (WHERE q.status = 'completed' AND q.completed_at > now() - interval '1 hour'
                       AND q.started_at IS NOT NULL),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM q.completed_at - q.started_at)::double precision)
               FILTER (WHERE q.status = 'completed' AND q.completed_at > now() - interval '1 hour'
                       AND q.started_at IS NOT NULL)
    FROM @extschema@.steadytext_queue AS q
    WHERE q.handoff_of IS NULL
       OR NOT EXISTS (SELECT 1 FROM @extschema@.steadytext_queue AS o WHERE o.request_id = q.handoff_of)
    GROUP BY q.function_name, q.status
    ORDER BY q.function_name, q.status
$$;

-- ===========================================================================
-- Cache
-- ===========================================================================

-- The cached result under `key`, or NULL; a hit is appended to
-- steadytext_cache_hits (one row, no lock on the entry: a caller that keeps
-- its transaction open stalls nobody). Called by the SECURITY DEFINER enqueue
-- and synchronous helpers.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_cache_hit(key text)
RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH hit AS (
        SELECT c.result FROM @extschema@.steadytext_cache AS c WHERE c.cache_key = key
    ), counted AS (
        INSERT INTO @extschema@.steadytext_cache_hits (cache_key, hits) SELECT key, 1 FROM hit
    )
    SELECT hit.result FROM hit
$$;

-- Counts the recorded hits (steadytext_cache_hits) into their entries'
-- access_count and last_accessed and removes them; returns how many hit rows
-- it folded. Rows another fold holds, or that a caller has not committed,
-- are left for the next one (SKIP LOCKED / invisible): it never waits on a
-- session. Hits of entries evicted meanwhile are dropped. SECURITY DEFINER
-- (steadytext_worker and steadytext_admin; the table is nobody else's).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_cache_fold()
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    WITH taken AS (
        DELETE FROM @extschema@.steadytext_cache_hits AS h
        WHERE h.ctid IN (SELECT t.ctid FROM @extschema@.steadytext_cache_hits AS t FOR UPDATE SKIP LOCKED)
        RETURNING h.cache_key, h.hits, h.at
    ), per_key AS (
        SELECT t.cache_key, sum(t.hits) AS hits, max(t.at) AS at, count(*) AS n FROM taken AS t GROUP BY t.cache_key
    ), bumped AS (
        UPDATE @extschema@.steadytext_cache AS c
        SET access_count = c.access_count + p.hits, last_accessed = greatest(c.last_accessed, p.at)
        FROM per_key AS p WHERE c.cache_key = p.cache_key
    )
    SELECT coalesce(sum(p.n), 0) INTO n FROM per_key AS p;
    RETURN n;
END;
$$;

-- One row: entries, total_bytes (on-disk size of the rows), hits (sum of
-- access_count - 1: reads after the first write, with the hits recorded
-- and not folded in yet), oldest/newest entry
-- (created_at), max_entries (steadytext.cache_max_entries). Raises nothing.
-- SECURITY DEFINER: aggregates only, for roles that cannot read the cache.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_cache_stats()
RETURNS TABLE(
    entries bigint,
    total_bytes bigint,
    hits bigint,
    oldest_entry timestamptz,
    newest_entry timestamptz,
    max_entries bigint
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*), coalesce(sum(pg_column_size(c.*)), 0)::bigint,
           coalesce(sum(c.access_count - 1), 0)::bigint
               + (SELECT coalesce(sum(h.hits), 0) FROM @extschema@.steadytext_cache_hits AS h
                  WHERE EXISTS (SELECT 1 FROM @extschema@.steadytext_cache AS e WHERE e.cache_key = h.cache_key))::bigint,
           min(c.created_at), max(c.created_at), @extschema@._steadytext_limit('cache_max_entries')
    FROM @extschema@.steadytext_cache AS c
$$;

-- Deletes every cache entry; returns how many. Raises nothing.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_cache_clear()
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM @extschema@.steadytext_cache;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

-- Frecency eviction down to steadytext.cache_max_entries (default 10000):
-- deletes the entries with the lowest access_count / (1 + hours since
-- last_accessed) (ties: least recently accessed first). Returns how many were
-- deleted. Recorded hits are counted in first (_steadytext_cache_fold).
-- One caller at a time evicts (so callers never evict more than the excess
-- together): it takes SHARE UPDATE EXCLUSIVE on steadytext_cache without
-- waiting, which no tenant can take (it needs a write privilege on the table)
-- and which conflicts with no reader or writer; a caller that finds it taken
-- (another eviction, a VACUUM) evicts nothing this time and returns 0.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_cache_evict()
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_entries bigint := greatest(@extschema@._steadytext_limit('cache_max_entries'), 0);
    excess bigint;
    n bigint;
BEGIN
    PERFORM @extschema@._steadytext_cache_fold();
    BEGIN
        LOCK TABLE @extschema@.steadytext_cache IN SHARE UPDATE EXCLUSIVE MODE NOWAIT;
    EXCEPTION WHEN lock_not_available THEN
        RETURN 0;
    END;
    SELECT count(*) - max_entries INTO excess FROM @extschema@.steadytext_cache;
    IF excess <= 0 THEN
        RETURN 0;
    END IF;
    DELETE FROM @extschema@.steadytext_cache AS c
    WHERE c.cache_key IN (
        SELECT v.cache_key FROM @extschema@.steadytext_cache AS v
        ORDER BY v.access_count::double precision
                 / (1 + extract(epoch FROM now() - v.last_accessed)::double precision / 3600),
                 v.last_accessed, v.cache_key
        LIMIT excess);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
