-- Result management: check, wait, cancel, retry, embeddings as real[].
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Result management
-- ===========================================================================

-- One row: the request's status, result, error, times (timestamp in the
-- session's TimeZone) and priority; status 'not_found' (other columns NULL)
-- for an unknown id. Raises 22004 for a NULL request_id.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_check_async(request_id UUID)
RETURNS TABLE(
    status TEXT,
    result TEXT,
    error TEXT,
    created_at TIMESTAMP,
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    priority INTEGER
)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._steadytext_check_not_null('steadytext_check_async', 'request_id',
                                       steadytext_check_async.request_id IS NULL);
    RETURN QUERY
    SELECT coalesce(q.status, 'not_found'), q.result, q.error,
           q.created_at::timestamp, q.started_at::timestamp, q.completed_at::timestamp, q.priority
    FROM (SELECT 1) AS one
    LEFT JOIN @extschema@.steadytext_queue AS q ON q.request_id = steadytext_check_async.request_id;
END;
$$;

-- One row per element of request_ids, in the given order (duplicates
-- repeated); unknown ids get status 'not_found'. Raises 22004 for NULL.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_check_async_batch(request_ids UUID[])
RETURNS TABLE(
    request_id UUID,
    status TEXT,
    result TEXT,
    error TEXT,
    created_at TIMESTAMP,
    completed_at TIMESTAMP
)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._steadytext_check_not_null('steadytext_check_async_batch', 'request_ids', request_ids IS NULL);
    RETURN QUERY
    SELECT u.id, coalesce(q.status, 'not_found'), q.result, q.error,
           q.created_at::timestamp, q.completed_at::timestamp
    FROM unnest(request_ids) WITH ORDINALITY AS u(id, ord)
    LEFT JOIN @extschema@.steadytext_queue AS q ON q.request_id = u.id
    ORDER BY u.ord;
END;
$$;

-- The same for ids written as text, so that the spec's example
-- `steadytext_check_async_batch(ARRAY['550e8400-...', ...])` (a text[]) runs
-- as written. Raises 22P02 for a string that is not a UUID, 22004 for NULL.
-- (With two overloads an untyped literal or driver parameter is ambiguous:
-- write '{...}'::uuid[] or $1::uuid[].)
CREATE OR REPLACE FUNCTION @extschema@.steadytext_check_async_batch(request_ids TEXT[])
RETURNS TABLE(
    request_id UUID,
    status TEXT,
    result TEXT,
    error TEXT,
    created_at TIMESTAMP,
    completed_at TIMESTAMP
)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM @extschema@.steadytext_check_async_batch(request_ids::uuid[])
$$;

-- The result of a finished request, or the error for a failed/cancelled one.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_result_or_raise(request_id uuid, status text, result text, error text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF status = 'completed' THEN
        RETURN result;
    ELSIF status = 'failed' THEN
        RAISE EXCEPTION 'steadytext_get_async_result: request % failed: %', request_id, coalesce(error, 'unknown error')
            USING ERRCODE = 'STX01', DETAIL = coalesce(error, ''),
                  HINT = 'steadytext_retry_failed(request_id) queues it again.';
    ELSIF status = 'cancelled' THEN
        RAISE EXCEPTION 'steadytext_get_async_result: request % was cancelled', request_id
            USING ERRCODE = 'STX02', DETAIL = coalesce(error, '');
    END IF;
    RETURN NULL;
END;
$$;

-- One wait of a poll loop: sleeps `delay` seconds (at most until deadline,
-- at least 1 ms) and returns the next delay (doubled, at most 200 ms).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_poll_sleep(delay double precision, deadline timestamptz)
RETURNS double precision
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_sleep(least(delay, greatest(extract(epoch FROM deadline - clock_timestamp()), 0.001)));
    RETURN least(delay * 2, 0.2);
END;
$$;

-- Raises STX03 once `deadline` has passed (on the wall clock): request_id
-- did not finish within timeout_seconds (`status`: its status now).
-- steadytext_get_async_result's timeout, polled here or through the
-- hand-off. Nothing for a NULL deadline.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_check_timeout(request_id uuid, timeout_seconds integer, status text,
                                                                deadline timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF clock_timestamp() >= deadline THEN
        RAISE EXCEPTION 'steadytext_get_async_result: request % did not finish within % seconds (status: %)',
            request_id, timeout_seconds, status
            USING ERRCODE = 'STX03',
                  HINT = 'Wait longer (timeout_seconds), or check on it later with steadytext_check_async.';
    END IF;
END;
$$;

-- Waits up to timeout_seconds for the request and returns its result.
-- Raises P0002 (no_data_found) for an unknown request_id, STX01 if the job
-- failed (message and DETAIL carry its error), STX02 if it was cancelled,
-- STX03 when the timeout passes (a SQLSTATE of the project's own, so that
-- PL/pgSQL's WHEN OTHERS catches it; 57014 is left to real statement
-- cancels and statement_timeout), 22004/22023 for NULL or
-- negative arguments. Polls the row with growing sleeps (10 ms .. 200 ms);
-- every poll sees new commits under READ COMMITTED (under REPEATABLE READ or
-- SERIALIZABLE the row never changes: it waits out the timeout). A request
-- enqueued by this same, uncommitted transaction is handed to a worker
-- through dblink (see _steadytext_handoff).
CREATE OR REPLACE FUNCTION @extschema@.steadytext_get_async_result(
    request_id UUID,
    timeout_seconds INTEGER DEFAULT 30
) RETURNS TEXT
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_get_async_result';
    id constant uuid := steadytext_get_async_result.request_id;
    deadline timestamptz;
    delay double precision := 0.01;
    r record;
    checked_own boolean := false;
BEGIN
    PERFORM @extschema@._steadytext_check_not_null(fn, 'request_id', id IS NULL);
    PERFORM @extschema@._steadytext_check_not_null(fn, 'timeout_seconds', timeout_seconds IS NULL);
    IF timeout_seconds < 0 THEN
        RAISE EXCEPTION '%: timeout_seconds must be >= 0, got %', fn, timeout_seconds
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    deadline := clock_timestamp() + timeout_seconds * interval '1 second';
    LOOP
        SELECT q.status, q.result, q.error, q.xmin AS row_xmin INTO r
        FROM @extschema@.steadytext_queue AS q WHERE q.request_id = id;
        IF NOT FOUND THEN
            RAISE EXCEPTION '%: request % does not exist', fn, id
                USING ERRCODE = 'no_data_found';
        END IF;
        IF r.status IN ('completed', 'failed', 'cancelled') THEN
            RETURN @extschema@._steadytext_result_or_raise(id, r.status, r.result, r.error);
        END IF;
        IF NOT checked_own THEN
            checked_own := true;
            IF r.status = 'pending' AND @extschema@._steadytext_is_own_uncommitted(r.row_xmin) THEN
                RETURN @extschema@._steadytext_handoff(id, timeout_seconds, deadline);
            END IF;
        END IF;
        PERFORM @extschema@._steadytext_check_timeout(id, timeout_seconds, r.status, deadline);
        delay := @extschema@._steadytext_poll_sleep(delay, deadline);
    END LOOP;
END;
$$;

-- The request `request_id` if its status is one of `statuses` and `who` may
-- act on it (owns it, or sees all: _steadytext_sees_all), locked FOR UPDATE;
-- a row of NULLs otherwise. The lookup of the SECURITY DEFINER cancel and
-- retry (`who` already checked by _steadytext_caller).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_lock_request(request_id uuid, statuses text[], who name,
    OUT owner_role name, OUT function_name text, OUT parameters jsonb)
RETURNS record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT q.owner_role, q.function_name, q.parameters
    FROM @extschema@.steadytext_queue AS q
    WHERE q.request_id = _steadytext_lock_request.request_id AND q.status = ANY (statuses)
      AND (q.owner_role = who OR @extschema@._steadytext_sees_all(who))
    FOR UPDATE OF q
$$;

-- true if the request was pending or processing and is now 'cancelled'
-- (completed_at set, error 'cancelled by user'); false for an unknown or
-- already finished one. Sends NOTIFY steadytext_cancelled (payload: the
-- request_id) so the worker running it aborts, and steadytext_completed via
-- the trigger. A role cancels only its own requests (admins, workers and
-- superusers any): another role's request counts as unknown (false).
-- Raises 22004 for NULL.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_cancel_async(request_id UUID) RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._steadytext_check_not_null('steadytext_cancel_async', 'request_id', steadytext_cancel_async.request_id IS NULL);
    RETURN @extschema@._steadytext_cancel(steadytext_cancel_async.request_id);
END;
$$;

-- steadytext_cancel_async's write, for `caller` (SECURITY DEFINER: callers
-- cannot UPDATE the queue themselves).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_cancel(request_id uuid, caller name DEFAULT current_user) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id constant uuid := _steadytext_cancel.request_id;
    r record;
BEGIN
    SELECT * INTO r FROM @extschema@._steadytext_lock_request(id, ARRAY['pending', 'processing'],
                                                              @extschema@._steadytext_caller(caller));
    IF r.owner_role IS NULL THEN
        RETURN false;
    END IF;
    UPDATE @extschema@.steadytext_queue AS q
    SET status = 'cancelled', error = 'cancelled by user', completed_at = now()
    WHERE q.request_id = id;
    PERFORM pg_notify('steadytext_cancelled', id::text);
    RETURN true;
END;
$$;

-- true if the request was 'failed' and is queued again ('pending', run_at
-- now(); retry_count and the last error kept; NOTIFY steadytext_new_job);
-- false otherwise (also for another role's request: a role retries only its
-- own, admins, workers and superusers any). Back to pending counts against
-- the queue limits like an enqueue (54000 when full, nothing changed). The
-- model id and cache key are those of the models configured now (a retry
-- may run on a worker with other models). Raises 22004 for NULL.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_retry_failed(request_id UUID) RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._steadytext_check_not_null('steadytext_retry_failed', 'request_id', steadytext_retry_failed.request_id IS NULL);
    RETURN @extschema@._steadytext_retry(steadytext_retry_failed.request_id);
END;
$$;

-- steadytext_retry_failed's write, for `caller` (SECURITY DEFINER).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_retry(request_id uuid, caller name DEFAULT current_user) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id constant uuid := _steadytext_retry.request_id;
    r record;
BEGIN
    SELECT * INTO r FROM @extschema@._steadytext_lock_request(id, ARRAY['failed'], @extschema@._steadytext_caller(caller));
    IF r.owner_role IS NULL THEN
        RETURN false;
    END IF;
    PERFORM @extschema@._steadytext_check_queue_size('steadytext_retry_failed', 1, r.owner_role);
    UPDATE @extschema@.steadytext_queue AS q
    SET status = 'pending', run_at = now(), started_at = NULL, worker_id = NULL, result = NULL,
        model_id = k.model_id, cache_key = k.cache_key
    FROM @extschema@._steadytext_request_key(r.function_name, r.parameters, r.owner_role) AS k
    WHERE q.request_id = id;
    PERFORM pg_notify('steadytext_new_job', '');
    RETURN true;
END;
$$;

-- The embedding of a completed embed request as real[] (its result is the
-- pgvector text '[a,b,...]'). Raises P0002 for an unknown request, 22023 for
-- a request that is not an embedding, 55000 if it has not completed.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_embedding(request_id UUID) RETURNS REAL[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_embedding';
    r record;
BEGIN
    PERFORM @extschema@._steadytext_check_not_null(fn, 'request_id', steadytext_embedding.request_id IS NULL);
    SELECT q.function_name, q.status, q.result INTO r
    FROM @extschema@.steadytext_queue AS q WHERE q.request_id = steadytext_embedding.request_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: request % does not exist', fn, steadytext_embedding.request_id
            USING ERRCODE = 'no_data_found';
    END IF;
    IF r.function_name <> 'embed' THEN
        RAISE EXCEPTION '%: request % is a % request, not an embedding', fn, steadytext_embedding.request_id, r.function_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.status <> 'completed' THEN
        RAISE EXCEPTION '%: request % is %, not completed', fn, steadytext_embedding.request_id, r.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Wait for it with steadytext_get_async_result.';
    END IF;
    RETURN translate(r.result, '[]', '{}')::real[];
END;
$$;
