-- The request-response hand-off through dblink.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- The libpq connection string the request-response hand-off uses to reach
-- this database from a second, autonomous session (through dblink). Where
-- it connects: the GUC steadytext.dblink_connstr as an operator set it
-- (ALTER DATABASE ... SET, ALTER SYSTEM / postgresql.conf; never a session's
-- SET or a role's own ALTER ROLE), else steadytext_config 'dblink_connstr'
-- (admin-only), else this database, port and first unix socket directory.
-- As whom: the string's user=, else steadytext_config 'handoff_user' (made by
-- steadytext_setup_handoff()), with the password steadytext_config
-- 'handoff_password' appended when the string names none. NULL when no user
-- is known. Only admins may call it (it returns a password); the GUC is
-- readable by every session, so it must not hold a password.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_dblink_connstr()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text;
    sock text;
    login text;
    pw text;
BEGIN
    SELECT c.value #>> '{}' INTO login FROM @extschema@.steadytext_config AS c WHERE c.key = 'handoff_user';
    SELECT c.value #>> '{}' INTO pw FROM @extschema@.steadytext_config AS c WHERE c.key = 'handoff_password';
    v := nullif(btrim(@extschema@._steadytext_operator_guc('dblink_connstr')), '');
    IF v IS NULL THEN
        SELECT nullif(btrim(c.value #>> '{}'), '') INTO v FROM @extschema@.steadytext_config AS c
        WHERE c.key = 'dblink_connstr';
    END IF;
    IF v IS NULL THEN
        IF login IS NULL THEN
            RETURN NULL;
        END IF;
        sock := nullif(btrim(split_part(current_setting('unix_socket_directories', true), ',', 1)), '');
        v := concat_ws(' ',
            'dbname=' || @extschema@._steadytext_conninfo_quote(current_database()),
            'port=' || current_setting('port'),
            'host=' || @extschema@._steadytext_conninfo_quote(sock));
    END IF;
    IF v !~ '(^|\s)user\s*=' THEN
        IF login IS NULL THEN
            RETURN NULL;
        END IF;
        v := v || ' user=' || @extschema@._steadytext_conninfo_quote(login);
    END IF;
    IF v !~ '(^|\s)password\s*=' AND pw IS NOT NULL THEN
        v := v || ' password=' || @extschema@._steadytext_conninfo_quote(pw);
    END IF;
    RETURN v;
END;
$$;

-- A libpq conninfo value, single-quoted and escaped.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_conninfo_quote(v text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '''' || replace(replace(v, '\', '\\'), '''', '\''') || ''''
$$;

-- Sets up the hand-off's login (run by `steadytext up` and `steadytext
-- migrate`, or by an operator; the caller needs CREATEROLE): a LOGIN role
-- that is no superuser and has no rights but membership in the NOLOGIN group
-- steadytext_handoff (which may only execute the three
-- _steadytext_handoff_* functions), with CONNECTION LIMIT connection_limit,
-- so that waiting sessions can never take every connection slot. Its
-- password (random) and name go to steadytext_config ('handoff_user',
-- 'handoff_password'), readable by admins only. Idempotent: a login already
-- configured for this database keeps its password. Also takes EXECUTE on
-- dblink's functions away from PUBLIC (only the hand-off, running as the
-- schema's owner, uses dblink). Returns the login role's name.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_setup_handoff(connection_limit integer DEFAULT 16)
RETURNS name
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    login name;
    pw text;
    owner name := (SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class AS c
                   WHERE c.oid = '@extschema@.steadytext_queue'::regclass);
    f record;
BEGIN
    IF connection_limit IS NULL OR connection_limit < 1 THEN
        RAISE EXCEPTION 'steadytext_setup_handoff: connection_limit must be >= 1, got %', connection_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT c.value #>> '{}' INTO login FROM @extschema@.steadytext_config AS c WHERE c.key = 'handoff_user';
    SELECT c.value #>> '{}' INTO pw FROM @extschema@.steadytext_config AS c WHERE c.key = 'handoff_password';
    IF login IS NULL OR pw IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles AS r WHERE r.rolname = login) THEN
        login := left('steadytext_handoff_' || (SELECT d.oid FROM pg_catalog.pg_database AS d
                                                WHERE d.datname = current_database())::text, 63);
        pw := encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex');
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles AS r WHERE r.rolname = login) THEN
            EXECUTE format('ALTER ROLE %I PASSWORD %L', login, pw);
        ELSE
            EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', login, pw);
        END IF;
    END IF;
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = login) THEN
        RAISE EXCEPTION 'steadytext_setup_handoff: % is a superuser; the hand-off must not connect as one', login
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT '
                   'CONNECTION LIMIT %s', login, connection_limit);
    EXECUTE format('GRANT steadytext_handoff TO %I', login);
    INSERT INTO @extschema@.steadytext_config AS c (key, value)
    VALUES ('handoff_user', to_jsonb(login::text)), ('handoff_password', to_jsonb(pw))
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()
    WHERE c.value IS DISTINCT FROM excluded.value;
    -- dblink: not for PUBLIC; the schema's owner (whose rights the hand-off
    -- runs with) keeps it
    FOR f IN
        SELECT p.oid::regprocedure AS sig
        FROM pg_catalog.pg_depend AS d
        JOIN pg_catalog.pg_extension AS e ON e.oid = d.refobjid AND e.extname = 'dblink'
        JOIN pg_catalog.pg_proc AS p ON p.oid = d.objid
        WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.refclassid = 'pg_catalog.pg_extension'::regclass
          AND d.deptype = 'e'
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f.sig);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f.sig, owner);
    END LOOP;
    RETURN login;
END;
$$;

-- Whether this (visible) row was written by the current transaction and is
-- not committed yet: a visible row whose xmin is still in progress can only
-- be our own transaction's or one of its subtransactions' (a savepoint, a
-- PL/pgSQL EXCEPTION block, an ORM's nested transaction). Every xid this
-- transaction or its subtransactions were assigned is at or after the
-- top-level one, so the 32-bit xmin is widened to the first full xid at or
-- after the top-level xid; an older row's xmin then maps into the future,
-- which pg_xact_status refuses (false).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_is_own_uncommitted(row_xmin xid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    top xid8 := pg_current_xact_id_if_assigned();
    top_full bigint;
    full_xid bigint;
BEGIN
    IF top IS NULL THEN
        RETURN false;  -- this transaction has written nothing
    END IF;
    top_full := top::text::bigint;
    full_xid := ((top_full >> 32) << 32) | row_xmin::text::bigint;
    IF full_xid < top_full THEN
        full_xid := full_xid + 4294967296;  -- assigned after the 32-bit counter wrapped
    END IF;
    RETURN pg_xact_status(full_xid::text::xid8) = 'in progress';
EXCEPTION WHEN OTHERS THEN
    RETURN false;
END;
$$;

-- The hand-off's remote side, run in the autonomous session as the
-- hand-off login (steadytext_handoff members only, and only the login
-- steadytext_config 'handoff_user' names; SECURITY DEFINER, as the login may
-- not write the queue itself). Inserts the committed copy of request
-- `original` (handoff_of = original), owned by `owner`, and wakes the
-- workers. Returns the copy's id. It takes only what it cannot recompute and
-- checks each: the request's arguments are validated as any enqueue's; the
-- cache key, model id and limits are derived here exactly as the enqueue
-- derives them; `owner` must be a role the backend `caller_pid` may act for,
-- and that backend must be in a transaction of this database that has
-- written the queue (where the original waits); at most one live copy per
-- original; and, under queue limits, a role's live copies never outnumber the
-- requests its open transactions announced (_steadytext_check_queue_size),
-- since each copy stands for one of them. A leaked hand-off password can thus
-- do no more than the hand-off does.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_handoff_insert(
    original uuid, function_name text, parameters jsonb, priority integer, owner name, caller_pid integer)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_get_async_result';
    model text;
    key text;
    copies bigint;
    id uuid;
BEGIN
    -- only this database's hand-off login: every hand-off login is a member of
    -- steadytext_handoff, and one database's must not act in another
    IF session_user::text IS DISTINCT FROM (SELECT c.value #>> '{}' FROM @extschema@.steadytext_config AS c
                                            WHERE c.key = 'handoff_user') THEN
        RAISE EXCEPTION '%: % is not this database''s hand-off login (steadytext_config ''handoff_user'')', fn, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF original IS NULL OR owner IS NULL OR caller_pid IS NULL
       OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles AS r WHERE r.rolname = owner) THEN
        RAISE EXCEPTION '%: a hand-off copy needs its original request, an existing owner role and the calling backend', fn
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (
        SELECT 1
        FROM pg_catalog.pg_stat_activity AS a
        JOIN pg_catalog.pg_locks AS l
          ON l.pid = a.pid AND l.locktype = 'relation' AND l.granted AND l.mode = 'RowExclusiveLock'
         AND l.relation = '@extschema@.steadytext_queue'::regclass
        WHERE a.pid = caller_pid AND a.pid <> pg_catalog.pg_backend_pid() AND a.datname = current_database()
          AND pg_catalog.pg_has_role(a.usesysid, owner, 'MEMBER')) THEN
        RAISE EXCEPTION '%: backend % is not a transaction of role % waiting on its own request', fn, caller_pid, quote_ident(owner)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM @extschema@._steadytext_validate(fn, function_name, parameters);
    PERFORM @extschema@._steadytext_check_priority(fn, priority);
    -- one live copy per original
    IF NOT pg_catalog.pg_try_advisory_xact_lock(hashtext('pg_steadytext handoff ' || original::text)) OR EXISTS (SELECT 1 FROM @extschema@.steadytext_queue AS q
               WHERE q.handoff_of = original AND q.status IN ('pending', 'processing')) THEN
        RAISE EXCEPTION '%: request % already has a hand-off copy waiting', fn, original
            USING ERRCODE = 'unique_violation';
    END IF;
    IF @extschema@._steadytext_limit('max_queue_size') > 0 OR @extschema@._steadytext_limit('max_queue_per_role') > 0 THEN
        SELECT count(*) INTO copies FROM @extschema@.steadytext_queue AS q
        WHERE q.owner_role = owner AND q.handoff_of IS NOT NULL AND q.status IN ('pending', 'processing');
        IF copies + 1 > @extschema@._steadytext_quota_inflight(@extschema@._steadytext_quota_key(owner), owner, 0) THEN
            RAISE EXCEPTION '%: role % has no open request left to hand off (% copies already wait)', fn, quote_ident(owner), copies
                USING ERRCODE = 'program_limit_exceeded';
        END IF;
    END IF;
    SELECT k.model_id, k.cache_key INTO model, key FROM @extschema@._steadytext_request_key(function_name, parameters, owner) AS k;
    INSERT INTO @extschema@.steadytext_queue AS q
        (function_name, parameters, priority, cache_key, model_id, owner_role, handoff_of)
    VALUES (_steadytext_handoff_insert.function_name, _steadytext_handoff_insert.parameters,
            _steadytext_handoff_insert.priority, key, model, owner, original)
    RETURNING q.request_id INTO id;
    PERFORM pg_notify('steadytext_new_job', '');
    RETURN id;
END;
$$;

-- The hand-off's remote side: the state of a hand-off copy (no row for any
-- other request). steadytext_handoff members only; SECURITY DEFINER.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_handoff_status(copy_id uuid)
RETURNS TABLE(status text, result text, error text, worker_id text, started_at timestamptz,
              completed_at timestamptz, failed_at timestamptz, retry_count integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT q.status, q.result, q.error, q.worker_id, q.started_at, q.completed_at, q.failed_at, q.retry_count
    FROM @extschema@.steadytext_queue AS q
    WHERE q.request_id = copy_id AND q.handoff_of IS NOT NULL
$$;

-- The hand-off's remote side: cancels a hand-off copy still pending or
-- processing (error = reason) and tells its worker (NOTIFY
-- steadytext_cancelled). Only hand-off copies. steadytext_handoff members
-- only; SECURITY DEFINER.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_handoff_cancel(copy_id uuid, reason text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE @extschema@.steadytext_queue AS q
    SET status = 'cancelled', error = reason
    WHERE q.request_id = copy_id AND q.handoff_of IS NOT NULL AND q.status IN ('pending', 'processing');
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pg_notify('steadytext_cancelled', copy_id::text);
    RETURN true;
END;
$$;

-- The request-response hand-off (see docs/sql-reference.md): the caller's own
-- uncommitted request is invisible to workers, so a committed copy
-- (handoff_of = the original) is enqueued through an autonomous dblink
-- session, polled there until it ends or the timeout passes, and its outcome
-- is written onto the caller's row (committing with the caller). On timeout
-- or any error the copy is cancelled. Returns the result; raises like
-- steadytext_get_async_result.
-- The autonomous session logs in as the hand-off login
-- (steadytext_dblink_connstr(); steadytext_setup_handoff()), never as a
-- superuser (checked after connecting: 42501), and may only call the three
-- _steadytext_handoff_* functions. When that login's CONNECTION LIMIT is
-- reached, the hand-off waits for a free slot (until its deadline), so waiting
-- sessions never take every connection of the server.
-- SECURITY DEFINER, so that callers need neither the connection string (it
-- holds a password) nor write access to the queue; it acts only on a request
-- written by the calling transaction itself (still uncommitted), which only
-- that transaction can see, so a caller cannot hand off, read or overwrite
-- anyone else's request. The copy keeps the original's owner_role.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_handoff(original uuid, timeout_seconds integer, deadline timestamptz)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_get_async_result';
    sch constant text := '@extschema@';
    dbl text;  -- schema holding dblink
    conn text := 'steadytext_handoff_' || replace(gen_random_uuid()::text, '-', '');
    connstr text;
    orig record;
    copy_id uuid;
    outcome record;
    remote_super boolean;
    detail text;
    delay double precision := 0.01;
    connected boolean := false;
BEGIN
    SELECT n.nspname INTO dbl
    FROM pg_catalog.pg_extension AS e JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace
    WHERE e.extname = 'dblink';
    IF dbl IS NULL THEN
        RAISE EXCEPTION '%: request % was enqueued by this same, still uncommitted transaction, so no worker can see it; waiting for it needs the dblink extension', fn, original
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Run CREATE EXTENSION dblink and SELECT steadytext_setup_handoff() (steadytext up and steadytext migrate do both), or commit the enqueue before waiting.';
    END IF;
    dbl := quote_ident(dbl);
    SELECT q.function_name, q.parameters, q.priority, q.owner_role, q.status, q.xmin AS row_xmin
    INTO orig FROM @extschema@.steadytext_queue AS q WHERE q.request_id = original;
    IF NOT FOUND OR orig.status <> 'pending' OR NOT @extschema@._steadytext_is_own_uncommitted(orig.row_xmin) THEN
        RAISE EXCEPTION '%: request % is not a pending request of this transaction', fn, original
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    connstr := @extschema@.steadytext_dblink_connstr();
    IF connstr IS NULL THEN
        RAISE EXCEPTION '%: request % was enqueued by this same, still uncommitted transaction; handing it to a worker needs the hand-off login, which is not set up', fn, original
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Have an operator run SELECT steadytext_setup_handoff() (steadytext up and steadytext migrate do), or commit the enqueue before waiting.';
    END IF;

    BEGIN
        -- connect, waiting for a slot while the login's CONNECTION LIMIT is reached
        LOOP
            BEGIN
                EXECUTE format('SELECT %s.dblink_connect($1, $2)', dbl) USING conn, connstr;
                connected := true;
                EXIT;
            EXCEPTION WHEN sqlclient_unable_to_establish_sqlconnection THEN
                GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
                IF (SQLERRM || ' ' || coalesce(detail, '')) !~* 'too many (connections|clients)|remaining connection slots' THEN
                    RAISE;
                END IF;
                IF clock_timestamp() >= deadline THEN
                    RAISE EXCEPTION '%: request % did not finish within % seconds (status: pending; every hand-off connection was busy)',
                        fn, original, timeout_seconds
                        USING ERRCODE = 'STX03',
                              HINT = 'Wait longer (timeout_seconds), or have an operator raise the hand-off login''s CONNECTION LIMIT (steadytext_setup_handoff(connection_limit)).';
                END IF;
                delay := @extschema@._steadytext_poll_sleep(delay, deadline);
            END;
        END LOOP;
        delay := 0.01;
        EXECUTE format('SELECT t.s FROM %s.dblink($1, $2) AS t(s boolean)', dbl)
        INTO remote_super
        USING conn, 'SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user';
        IF remote_super IS NOT FALSE THEN
            RAISE EXCEPTION '%: the hand-off''s connection string logs in as a superuser; it must log in as a member of steadytext_handoff', fn
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Run SELECT steadytext_setup_handoff() and remove user= from steadytext.dblink_connstr / steadytext_config ''dblink_connstr''.';
        END IF;
        EXECUTE format('SELECT t.id FROM %s.dblink($1, $2) AS t(id uuid)', dbl)
        INTO copy_id
        USING conn, format(
            'SELECT %s._steadytext_handoff_insert(%L, %L, %L::jsonb, %s, %L, %s)',
            sch, original, orig.function_name, orig.parameters, orig.priority, orig.owner_role, pg_catalog.pg_backend_pid());

        LOOP
            EXECUTE format(
                'SELECT * FROM %s.dblink($1, $2) AS t(status text, result text, error text, worker_id text, '
                'started_at timestamptz, completed_at timestamptz, failed_at timestamptz, retry_count integer)', dbl)
            INTO outcome
            USING conn, format('SELECT * FROM %s._steadytext_handoff_status(%L)', sch, copy_id);
            EXIT WHEN outcome.status IN ('completed', 'failed', 'cancelled');
            IF clock_timestamp() >= deadline THEN
                EXECUTE format('SELECT t.ok FROM %s.dblink($1, $2) AS t(ok boolean)', dbl)
                    USING conn, format('SELECT %s._steadytext_handoff_cancel(%L, %L)', sch, copy_id,
                                       'cancelled: steadytext_get_async_result timed out');
                EXECUTE format('SELECT %s.dblink_disconnect($1)', dbl) USING conn;
                connected := false;
                -- the deadline has passed: raises STX03
                PERFORM @extschema@._steadytext_check_timeout(original, timeout_seconds, outcome.status, '-infinity');
            END IF;
            delay := @extschema@._steadytext_poll_sleep(delay, deadline);
        END LOOP;
        EXECUTE format('SELECT %s.dblink_disconnect($1)', dbl) USING conn;
        connected := false;
    EXCEPTION WHEN query_canceled OR others THEN
        IF connected THEN
            IF copy_id IS NOT NULL THEN
                BEGIN
                    EXECUTE format('SELECT t.ok FROM %s.dblink($1, $2) AS t(ok boolean)', dbl)
                        USING conn, format('SELECT %s._steadytext_handoff_cancel(%L, %L)', sch, copy_id,
                                           'cancelled: the waiting transaction failed');
                EXCEPTION WHEN OTHERS THEN
                    NULL;
                END;
            END IF;
            BEGIN
                EXECUTE format('SELECT %s.dblink_disconnect($1)', dbl) USING conn;
            EXCEPTION WHEN OTHERS THEN
                NULL;
            END;
        END IF;
        RAISE;
    END;

    UPDATE @extschema@.steadytext_queue AS q
    SET status = outcome.status, result = outcome.result, error = outcome.error,
        worker_id = outcome.worker_id, started_at = outcome.started_at,
        completed_at = outcome.completed_at, failed_at = outcome.failed_at,
        retry_count = outcome.retry_count
    WHERE q.request_id = original;
    RETURN @extschema@._steadytext_result_or_raise(original, outcome.status, outcome.result, outcome.error);
END;
$$;
