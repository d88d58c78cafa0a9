-- The request-response hand-off through dblink.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- The libpq connection string the request-response hand-off uses to reach
-- this database from a second, autonomous session (through dblink): the GUC
-- steadytext.dblink_connstr if set by the server's operator (postgresql.conf,
-- ALTER SYSTEM, ALTER DATABASE, command line), else steadytext_config
-- 'dblink_connstr', else dbname/port/user of the current role (plus the first
-- unix socket dir). A value a role set for itself (SET, ALTER ROLE, PGOPTIONS)
-- is ignored: the hand-off connects with the owner's rights, so callers must
-- not choose where it connects. Not executable by steadytext_user (it may
-- return a password).
CREATE OR REPLACE FUNCTION steadytext_dblink_connstr()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    v text;
    sock text;
BEGIN
    SELECT nullif(s.setting, '') INTO v FROM pg_settings AS s
    WHERE s.name = 'steadytext.dblink_connstr'
      AND s.source NOT IN ('session', 'user', 'database user', 'client', 'interactive');
    IF v IS NOT NULL THEN
        RETURN v;
    END IF;
    SELECT c.value #>> '{}' INTO v FROM steadytext_config AS c WHERE c.key = 'dblink_connstr';
    IF v IS NOT NULL AND v <> '' THEN
        RETURN v;
    END IF;
    sock := nullif(btrim(split_part(current_setting('unix_socket_directories', true), ',', 1)), '');
    RETURN concat_ws(' ',
        'dbname=' || _steadytext_conninfo_quote(current_database()),
        'port=' || current_setting('port'),
        'user=' || _steadytext_conninfo_quote(current_user),
        'host=' || _steadytext_conninfo_quote(sock));
END;
$$;

-- A libpq conninfo value, single-quoted and escaped.
CREATE OR REPLACE FUNCTION _steadytext_conninfo_quote(v text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT '''' || replace(replace(v, '\', '\\'), '''', '\''') || ''''
$$;

-- Whether this (visible) row was written by the current transaction and is
-- not committed yet: a visible row whose xmin is still in progress can only
-- be our own (sub)transaction's.
CREATE OR REPLACE FUNCTION _steadytext_is_own_uncommitted(row_xmin xid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    cur xid8 := pg_current_xact_id_if_assigned();
    cur_full bigint;
    x bigint := row_xmin::text::bigint;
    epoch bigint;
BEGIN
    IF cur IS NULL THEN
        RETURN false;  -- this transaction has written nothing
    END IF;
    cur_full := cur::text::bigint;
    epoch := cur_full >> 32;
    IF x > (cur_full & 4294967295) THEN
        epoch := epoch - 1;  -- xmin is from before the current epoch's wraparound
    END IF;
    IF epoch < 0 THEN
        RETURN false;
    END IF;
    RETURN pg_xact_status(((epoch << 32) | x)::text::xid8) = 'in progress';
EXCEPTION WHEN OTHERS THEN
    RETURN false;
END;
$$;

-- The request-response hand-off (see docs/sql-reference.md): the caller's own
-- uncommitted request is invisible to workers, so a committed copy
-- (handoff_of = the original) is enqueued through an autonomous dblink
-- session, polled there until it ends or the timeout passes, and its outcome
-- is written onto the caller's row (committing with the caller). On timeout
-- or any error the copy is cancelled. Returns the result; raises like
-- steadytext_get_async_result. SECURITY DEFINER, so that callers need
-- neither the connection string (it may hold a password) nor write access to
-- the queue; it acts only on a request written by the calling transaction
-- itself (still uncommitted), which only that transaction can see, so a
-- caller cannot hand off, read or overwrite anyone else's request. The copy
-- keeps the original's owner_role.
CREATE OR REPLACE FUNCTION _steadytext_handoff(original uuid, timeout_seconds integer, deadline timestamptz)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_get_async_result';
    dbl text;  -- schema holding dblink
    conn text := 'steadytext_handoff_' || replace(gen_random_uuid()::text, '-', '');
    sch text := quote_ident(current_schema());
    orig record;
    copy_id uuid;
    outcome record;
    delay double precision := 0.01;
    connected boolean := false;
BEGIN
    SELECT n.nspname INTO dbl
    FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace
    WHERE e.extname = 'dblink';
    IF dbl IS NULL THEN
        RAISE EXCEPTION '%: request % was enqueued by this same, still uncommitted transaction, so no worker can see it; waiting for it needs the dblink extension', fn, original
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Run CREATE EXTENSION dblink (and, where password authentication is used, set steadytext.dblink_connstr), or commit the enqueue before waiting.';
    END IF;
    dbl := quote_ident(dbl);
    SELECT q.function_name, q.parameters, q.priority, q.cache_key, q.model_id, q.owner_role,
           q.max_retries, q.timeout_seconds, q.status, q.xmin AS row_xmin
    INTO orig FROM steadytext_queue AS q WHERE q.request_id = original;
    IF NOT FOUND OR orig.status <> 'pending' OR NOT _steadytext_is_own_uncommitted(orig.row_xmin) THEN
        RAISE EXCEPTION '%: request % is not a pending request of this transaction', fn, original
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    BEGIN
        EXECUTE format('SELECT %s.dblink_connect($1, $2)', dbl) USING conn, steadytext_dblink_connstr();
        connected := true;
        EXECUTE format(
            'SELECT t.id FROM %s.dblink($1, $2) AS t(id uuid)', dbl)
        INTO copy_id
        USING conn, format(
            'INSERT INTO %s.steadytext_queue (function_name, parameters, priority, cache_key, model_id, '
            'owner_role, max_retries, timeout_seconds, handoff_of) '
            'VALUES (%L, %L::jsonb, %s, %L, %L, %L, %s, %s, %L) RETURNING request_id',
            sch, orig.function_name, orig.parameters, orig.priority, orig.cache_key, orig.model_id,
            orig.owner_role, coalesce(orig.max_retries::text, 'NULL'),
            coalesce(orig.timeout_seconds::text, 'NULL'), original);
        EXECUTE format('SELECT %s.dblink_exec($1, $2)', dbl) USING conn, 'NOTIFY steadytext_new_job';

        LOOP
            EXECUTE format(
                'SELECT * FROM %s.dblink($1, $2) AS t(status text, result text, error text, worker_id text, '
                'started_at timestamptz, completed_at timestamptz, failed_at timestamptz, retry_count integer)', dbl)
            INTO outcome
            USING conn, format(
                'SELECT status, result, error, worker_id, started_at, completed_at, failed_at, retry_count '
                'FROM %s.steadytext_queue WHERE request_id = %L', sch, copy_id);
            EXIT WHEN outcome.status IN ('completed', 'failed', 'cancelled');
            IF clock_timestamp() >= deadline THEN
                EXECUTE format('SELECT count(*) FROM %s.dblink($1, $2) AS t(x text)', dbl)
                    USING conn, format(
                        'WITH c AS (UPDATE %s.steadytext_queue SET status = ''cancelled'', '
                        'error = ''cancelled: steadytext_get_async_result timed out'' '
                        'WHERE request_id = %L AND status IN (''pending'', ''processing'') RETURNING request_id) '
                        'SELECT pg_notify(''steadytext_cancelled'', request_id::text)::text FROM c', sch, copy_id);
                EXECUTE format('SELECT %s.dblink_disconnect($1)', dbl) USING conn;
                connected := false;
                RAISE EXCEPTION '%: request % did not finish within % seconds (status: %)',
                    fn, original, timeout_seconds, outcome.status
                    USING ERRCODE = 'query_canceled',
                          HINT = 'Wait longer (timeout_seconds), or check on it later with steadytext_check_async.';
            END IF;
            PERFORM pg_sleep(least(delay, greatest(extract(epoch FROM deadline - clock_timestamp()), 0.001)));
            delay := least(delay * 2, 0.2);
        END LOOP;
        EXECUTE format('SELECT %s.dblink_disconnect($1)', dbl) USING conn;
        connected := false;
    EXCEPTION WHEN query_canceled OR others THEN
        IF connected THEN
            BEGIN
                EXECUTE format('SELECT count(*) FROM %s.dblink($1, $2) AS t(x text)', dbl)
                    USING conn, format(
                        'WITH c AS (UPDATE %s.steadytext_queue SET status = ''cancelled'', '
                        'error = ''cancelled: the waiting transaction failed'' '
                        'WHERE request_id = %L AND status IN (''pending'', ''processing'') RETURNING request_id) '
                        'SELECT pg_notify(''steadytext_cancelled'', request_id::text)::text FROM c', sch, copy_id);
            EXCEPTION WHEN OTHERS THEN
                NULL;
            END;
            BEGIN
                EXECUTE format('SELECT %s.dblink_disconnect($1)', dbl) USING conn;
            EXCEPTION WHEN OTHERS THEN
                NULL;
            END;
        END IF;
        RAISE;
    END;

    UPDATE steadytext_queue AS q
    SET status = outcome.status, result = outcome.result, error = outcome.error,
        worker_id = outcome.worker_id, started_at = outcome.started_at,
        completed_at = outcome.completed_at, failed_at = outcome.failed_at,
        retry_count = outcome.retry_count
    WHERE q.request_id = original;
    RETURN _steadytext_result_or_raise(original, outcome.status, outcome.result, outcome.error);
END;
$$;
