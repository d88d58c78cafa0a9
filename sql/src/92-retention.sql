-- Result retention: rows of steadytext_queue are kept until removed, so the
-- table does not grow without bound only if old results are deleted.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Retention (the spec's best practice "periodic cleanup of old completed results")
-- ===========================================================================

-- Deletes at most batch_size rows of steadytext_queue whose status is one of
-- `statuses` (terminal ones only) and whose completed_at is older than
-- now() - older_than; returns how many it deleted. One bounded batch per
-- call: a caller loops until it returns 0 (the worker's retention timer does,
-- one transaction per batch), so no statement holds row locks for long and no
-- table lock beyond ROW EXCLUSIVE is taken. Rows another session has locked
-- are skipped (SKIP LOCKED); a row retried back to pending meanwhile is
-- re-checked and kept. The rows of a *_batch_async call go together: none is
-- deleted while any row of its batch is still pending, processing or newer
-- than the cutoff. Dead letters (steadytext_dead_letter_queue) and the cache
-- (steadytext_cache_evict) keep their own policies.
-- SECURITY DEFINER: the worker role has no DELETE on the queue; only
-- steadytext_admin and steadytext_worker may execute it. A session whose
-- login is no operator (a superuser or steadytext_admin member: a worker's
-- own login) deletes only under the retention an admin set
-- (steadytext_config 'result_retention', an interval such as "7 days"):
-- older_than counts as at least that, and without it nothing is deleted;
-- and only rows created before the cutoff too (created_at, which a worker
-- cannot write, so rewriting completed_at deletes nothing younger).
-- Raises 22004 (an argument NULL), 22023 (older_than negative, statuses empty
-- or naming a non-terminal status, batch_size < 1), 54000 (batch_size over 100000).
CREATE OR REPLACE FUNCTION steadytext_cleanup_results(
    older_than interval DEFAULT '7 days',
    statuses text[] DEFAULT ARRAY['completed', 'failed', 'cancelled'],
    batch_size integer DEFAULT 10000
)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz;
    bad text;
    deleted bigint;
    policy interval;
    operator constant boolean := @extschema@._steadytext_is_operator(session_user);
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'steadytext_cleanup_results: older_than must not be NULL'
            USING ERRCODE = '22004';
    END IF;
    IF older_than < interval '0' THEN
        RAISE EXCEPTION 'steadytext_cleanup_results: older_than must not be negative, got %', older_than
            USING ERRCODE = '22023';
    END IF;
    IF statuses IS NULL THEN
        RAISE EXCEPTION 'steadytext_cleanup_results: statuses must not be NULL'
            USING ERRCODE = '22004';
    END IF;
    IF cardinality(statuses) = 0 THEN
        RAISE EXCEPTION 'steadytext_cleanup_results: statuses must name at least one of completed, failed, cancelled'
            USING ERRCODE = '22023';
    END IF;
    IF array_position(statuses, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'steadytext_cleanup_results: statuses must not contain NULL'
            USING ERRCODE = '22004';
    END IF;
    SELECT s INTO bad FROM unnest(statuses) AS s
    WHERE s NOT IN ('completed', 'failed', 'cancelled') LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'steadytext_cleanup_results: statuses may name only completed, failed or cancelled, got ''%''', bad
            USING ERRCODE = '22023',
                  HINT = 'pending and processing requests are never deleted';
    END IF;
    IF batch_size IS NULL THEN
        RAISE EXCEPTION 'steadytext_cleanup_results: batch_size must not be NULL'
            USING ERRCODE = '22004';
    END IF;
    IF batch_size < 1 THEN
        RAISE EXCEPTION 'steadytext_cleanup_results: batch_size must be at least 1, got %', batch_size
            USING ERRCODE = '22023';
    END IF;
    IF batch_size > 100000 THEN
        RAISE EXCEPTION 'steadytext_cleanup_results: batch_size must be at most 100000, got %', batch_size
            USING ERRCODE = '54000';
    END IF;

    IF NOT operator THEN
        BEGIN
            SELECT (c.value #>> '{}')::interval INTO policy
            FROM @extschema@.steadytext_config AS c WHERE c.key = 'result_retention';
        EXCEPTION WHEN OTHERS THEN
            policy := NULL;  -- not an interval: no policy
        END;
        IF policy IS NULL OR policy < interval '0' THEN
            RETURN 0;
        END IF;
        older_than := greatest(older_than, policy);
    END IF;
    cutoff := now() - older_than;
    WITH doomed AS (
        SELECT q.request_id
        FROM @extschema@.steadytext_queue AS q
        WHERE q.completed_at < cutoff
          AND (operator OR q.created_at < cutoff)
          AND q.status = ANY (statuses)
          AND q.status IN ('completed', 'failed', 'cancelled')
          AND (q.batch_id IS NULL OR NOT EXISTS (
                SELECT 1 FROM @extschema@.steadytext_queue AS b
                WHERE b.batch_id = q.batch_id
                  AND (b.completed_at IS NULL OR b.completed_at >= cutoff)))
        ORDER BY q.completed_at
        LIMIT batch_size
        FOR UPDATE OF q SKIP LOCKED
    )
    DELETE FROM @extschema@.steadytext_queue AS q
    USING doomed
    WHERE q.request_id = doomed.request_id;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END;
$$;

REVOKE ALL ON FUNCTION @extschema@.steadytext_cleanup_results(interval, text[], integer)
    FROM PUBLIC, steadytext_user, steadytext_admin, steadytext_worker;
GRANT EXECUTE ON FUNCTION @extschema@.steadytext_cleanup_results(interval, text[], integer)
    TO steadytext_admin, steadytext_worker;
