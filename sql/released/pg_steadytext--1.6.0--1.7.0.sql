-- pg_steadytext upgrade 1.6.0 -> 1.7.0.
-- Built by `npm run build:sql`: the hand-written part (sql/src/upgrades/
-- 1.6.0--1.7.0.sql), then every repeatable source file of 1.7.0.
\echo Use "ALTER EXTENSION pg_steadytext UPDATE TO '1.7.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- sql/src/upgrades/1.6.0--1.7.0.sql
-- ---------------------------------------------------------------------------
-- Upgrade 1.6.0 -> 1.7.0, hand-written part: what the repeatable source files
-- cannot do by running again. test/sql/upgrade.test.ts proves the result
-- equals a fresh 1.7.0 install, from every released version.
--
-- 1.7.0: the worker's statements on steadytext_pipeline_rows (the claim and
-- its cache keys, the write and its cache entries, the release, the check for
-- rows a session holds, the scan's insert) look their rows up by key one at a
-- time and update them where they were locked (ctid), instead of joining on
-- the key: without statistics for a new pipeline's rows, the planner walked
-- every row of the pipeline (or every row in flight) once per row of the
-- batch. No function changes its arguments or results, so
-- sql/src/47-pipelines.sql replaces them in place; nothing is dropped here.
--
-- A pipeline's claim and write commit with synchronous_commit off (their
-- transaction only): a result and the bookkeeping that says it is current
-- commit together, so a crash loses both and the row is computed again.

-- ---------------------------------------------------------------------------
-- sql/src/05-roles.sql
-- ---------------------------------------------------------------------------
-- Roles: four cluster-wide NOLOGIN group roles (docs/security.md).
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Roles and privileges (docs/security.md)
-- ===========================================================================
-- Four NOLOGIN group roles; grant them to login roles
-- (CREATE ROLE app LOGIN PASSWORD '...' IN ROLE steadytext_user):
--   steadytext_user    enqueue, wait on, check, cancel and retry its OWN
--                      requests; SELECT on steadytext_queue shows only rows
--                      whose owner_role is the current role (row-level
--                      security); no direct writes, no cache or config access.
--   steadytext_admin   every function and every row; full DML on the tables.
--   steadytext_worker  what a worker does: claim/complete/fail/reclaim/
--                      release rows of steadytext_queue, heartbeat in
--                      steadytext_workers, write steadytext_cache and the
--                      model ids (through _steadytext_publish_model_ids; it
--                      cannot read steadytext_config). No DDL, no DELETE on
--                      the queue.
--   steadytext_handoff the request-response hand-off's login
--                      (steadytext_setup_handoff() makes it, a member of
--                      this group): only the three _steadytext_handoff_*
--                      functions, nothing else.
-- Superusers and the role owning the tables (the installer) see everything.
-- Roles are cluster-wide: a second database's install finds them already
-- there (or created meanwhile by a concurrent install).
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['steadytext_user', 'steadytext_admin', 'steadytext_worker', 'steadytext_handoff'] LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by an install into another database
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'pg_steadytext: role % does not exist and % may not create it', r, current_user
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = 'Have a superuser run CREATE ROLE steadytext_user NOLOGIN; CREATE ROLE steadytext_admin NOLOGIN; CREATE ROLE steadytext_worker NOLOGIN; CREATE ROLE steadytext_handoff NOLOGIN; then install again.';
        END;
    END LOOP;
END;
$$;

-- ---------------------------------------------------------------------------
-- sql/src/20-validation.sql
-- ---------------------------------------------------------------------------
-- Limits and argument validation shared by every enqueue function.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Internal helpers: limits, argument validation, model ids
-- ===========================================================================
-- Internal helpers start with an underscore; they are not part of the spec's
-- surface and may change between versions.

-- Every size and count limit: name, built-in default, meaning. The rows are
-- written from src/limits.ts by the build (at its @limits line).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_limit_defaults()
RETURNS TABLE(ord integer, name text, value bigint, description text)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM (VALUES
        -- @limits defaults
        (1,  'max_tokens',           4096::bigint,       'largest max_tokens a generate* function accepts (smallest is 1)'),
        (2,  'max_prompt_bytes',     262144::bigint,     'largest prompt, text_input, query, task and each rerank document / batch item, in bytes'),
        (3,  'max_rerank_documents', 1000::bigint,       'most documents one steadytext_rerank_async call accepts'),
        (4,  'max_batch_items',      10000::bigint,      'most items one steadytext_*_batch_async call accepts'),
        (5,  'max_choices',          256::bigint,        'most choices steadytext_generate_choice_async accepts (at least 2)'),
        (6,  'max_pattern_bytes',    4096::bigint,       'largest regex pattern, in bytes'),
        (7,  'max_schema_bytes',     65536::bigint,      'largest JSON schema (its jsonb text), in bytes'),
        (8,  'max_schema_depth',     64::bigint,         'deepest nesting of objects/arrays in a JSON schema'),
        (9,  'max_queue_size',       0::bigint,          'most pending + processing requests before enqueue raises 54000; 0 = unlimited'),
        (10, 'cache_max_entries',    10000::bigint,      'steadytext_cache rows kept by steadytext_cache_evict()'),
        (11, 'sync_timeout_seconds', 30::bigint,         'seconds steadytext_generate/_embed/_rerank/... wait for the worker before raising STX03'),
        (12, 'max_queue_per_role',   0::bigint,          'most pending + processing requests of one owner role before enqueue raises 54000; 0 = unlimited'),
        (13, 'max_priority',         2147483647::bigint, 'highest priority an enqueue accepts (22023 above it)')
    ) AS t(ord, name, value, description)
$$;

-- Whether `who` sets limits for its own sessions: a superuser or a member of
-- steadytext_admin.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_is_operator(who name)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = who), false)
        OR coalesce(pg_catalog.pg_has_role(who, 'steadytext_admin', 'USAGE'), false)
$$;

-- The GUC steadytext.<name> as an operator set it, or NULL: ALTER DATABASE
-- ... SET for this database (pg_db_role_setting), else ALTER SYSTEM /
-- postgresql.conf (pg_file_settings; where the schema's owner may not read
-- it, not seen). Never a session's SET, PGOPTIONS or a role's ALTER ROLE ...
-- SET (which a role may run on itself). Answers only limit names and
-- dblink_connstr. SECURITY DEFINER: pg_file_settings needs
-- pg_read_all_settings.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_operator_guc(setting_name text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    full_name constant text := 'steadytext.' || setting_name;
    v text;
BEGIN
    IF setting_name IS NULL OR NOT (setting_name = 'dblink_connstr' OR EXISTS (
        SELECT 1 FROM @extschema@._steadytext_limit_defaults() AS d WHERE d.name = setting_name)) THEN
        RETURN NULL;
    END IF;
    SELECT substr(e.cfg, length(full_name) + 2) INTO v
    FROM pg_catalog.pg_db_role_setting AS d
    CROSS JOIN LATERAL unnest(d.setconfig) AS e(cfg)
    WHERE d.setdatabase = (SELECT o.oid FROM pg_catalog.pg_database AS o WHERE o.datname = current_database())
      AND d.setrole = 0
      AND starts_with(e.cfg, full_name || '=');
    IF FOUND THEN
        RETURN v;
    END IF;
    BEGIN
        SELECT s.setting INTO v
        FROM pg_catalog.pg_file_settings AS s
        WHERE s.name = full_name AND s.error IS NULL
        ORDER BY s.seqno DESC
        LIMIT 1;
    EXCEPTION WHEN insufficient_privilege THEN
        v := NULL;
    END;
    RETURN v;
END;
$$;

-- One limit's effective value for this session:
--   * the operator's value: ALTER DATABASE ... SET, else ALTER SYSTEM /
--     postgresql.conf (see _steadytext_operator_guc), else the default;
--   * the session's value (current_setting: SET, PGOPTIONS, ALTER ROLE ...
--     SET): for a superuser or steadytext_admin session user it is the value;
--     for anyone else it may only tighten the operator's (be smaller; for
--     max_queue_size and max_queue_per_role 0 means unlimited).
-- So a tenant's own SET or ALTER ROLE never lifts what an operator set.
-- Raises 22023 for a non-integer setting; NULL for an unknown name.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_limit(limit_name text)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dflt bigint;
    setting text := nullif(btrim(current_setting('steadytext.' || limit_name, true)), '');
    s bigint;
    op text;
    op_value bigint;
    zero_unlimited constant boolean := limit_name IN ('max_queue_size', 'max_queue_per_role');
BEGIN
    SELECT d.value INTO dflt FROM @extschema@._steadytext_limit_defaults() AS d WHERE d.name = limit_name;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF setting IS NULL THEN
        RETURN dflt;
    END IF;
    IF setting !~ '^-?[0-9]{1,18}$' THEN
        RAISE EXCEPTION 'steadytext.%: % is not an integer', limit_name, quote_literal(setting)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    s := setting::bigint;
    IF @extschema@._steadytext_is_operator(session_user) THEN
        RETURN s;
    END IF;
    op := nullif(btrim(@extschema@._steadytext_operator_guc(limit_name)), '');
    op_value := CASE WHEN op ~ '^-?[0-9]{1,18}$' THEN op::bigint ELSE dflt END;
    IF s = op_value THEN
        RETURN s;
    ELSIF zero_unlimited THEN
        RETURN CASE WHEN s > 0 AND (op_value <= 0 OR s < op_value) THEN s ELSE op_value END;
    ELSE
        RETURN least(s, op_value);
    END IF;
END;
$$;

-- Every limit with its effective value for this session (see
-- _steadytext_limit). Raises 22023 if a setting is not an integer.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_limits()
RETURNS TABLE(name text, value bigint, description text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.name, @extschema@._steadytext_limit(d.name), d.description
    FROM @extschema@._steadytext_limit_defaults() AS d
    ORDER BY d.ord
$$;

-- A required text argument: NULL -> 22004, empty -> 22023, too big -> 54000.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_check_text(fn text, arg text, val text, max_bytes bigint)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF val IS NULL THEN
        RAISE EXCEPTION '%: % must not be NULL or empty', fn, arg
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF val = '' THEN
        RAISE EXCEPTION '%: % must not be NULL or empty', fn, arg
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF octet_length(val) > max_bytes THEN
        RAISE EXCEPTION '%: % is % bytes, over the limit of % bytes', fn, arg, octet_length(val), max_bytes
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'The limit is steadytext.max_prompt_bytes (see steadytext_limits()).';
    END IF;
END;
$$;

-- Arguments that must not be NULL (use_cache, seed, priority, ...).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_check_not_null(fn text, arg text, is_null boolean)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF is_null THEN
        RAISE EXCEPTION '%: % must not be NULL', fn, arg
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
END;
$$;

-- max_tokens in 1..steadytext.max_tokens.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_check_max_tokens(fn text, max_tokens integer)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    top bigint := @extschema@._steadytext_limit('max_tokens');
BEGIN
    PERFORM @extschema@._steadytext_check_not_null(fn, 'max_tokens', max_tokens IS NULL);
    IF max_tokens < 1 OR max_tokens > top THEN
        RAISE EXCEPTION '%: max_tokens must be between 1 and %, got %', fn, top, max_tokens
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;

-- seed: not NULL, not negative (the engine's seeds are unsigned 32-bit).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_check_seed(fn text, seed integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._steadytext_check_not_null(fn, 'seed', seed IS NULL);
    IF seed < 0 THEN
        RAISE EXCEPTION '%: seed must be >= 0, got %', fn, seed
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;

-- A text[] argument whose every element is a required text (batch prompts,
-- rerank documents): NULL array or element -> 22004, multidimensional or
-- (unless allow_empty) empty -> 22023, too many -> 54000, an element too
-- big -> 54000, an empty element (unless allow_empty_items) -> 22023.
-- Set-based, so 10,000 items cost one scan.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_check_text_array(
    fn text, arg text, vals text[], max_items bigint, max_items_guc text,
    allow_empty boolean, allow_empty_items boolean)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_bytes bigint := @extschema@._steadytext_limit('max_prompt_bytes');
    n integer;
    bad record;
BEGIN
    IF vals IS NULL THEN
        RAISE EXCEPTION '%: % must not be NULL', fn, arg
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF array_ndims(vals) > 1 THEN
        RAISE EXCEPTION '%: % must be a one-dimensional array', fn, arg
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    n := coalesce(cardinality(vals), 0);
    IF n = 0 AND NOT allow_empty THEN
        RAISE EXCEPTION '%: % must not be empty', fn, arg
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF n > max_items THEN
        RAISE EXCEPTION '%: % has % items, over the limit of %', fn, arg, n, max_items
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = format('The limit is %s (see steadytext_limits()).', max_items_guc);
    END IF;
    SELECT u.ord, u.v IS NULL AS is_null, octet_length(u.v) AS bytes INTO bad
    FROM unnest(vals) WITH ORDINALITY AS u(v, ord)
    WHERE u.v IS NULL OR (u.v = '' AND NOT allow_empty_items) OR octet_length(u.v) > max_bytes
    ORDER BY u.ord
    LIMIT 1;
    IF FOUND THEN
        IF bad.is_null THEN
            RAISE EXCEPTION '%: %[%] must not be NULL', fn, arg, bad.ord
                USING ERRCODE = 'null_value_not_allowed';
        ELSIF bad.bytes = 0 THEN
            RAISE EXCEPTION '%: %[%] must not be empty', fn, arg, bad.ord
                USING ERRCODE = 'invalid_parameter_value';
        ELSE
            RAISE EXCEPTION '%: %[%] is % bytes, over the limit of % bytes', fn, arg, bad.ord, bad.bytes, max_bytes
                USING ERRCODE = 'program_limit_exceeded',
                      HINT = 'The limit is steadytext.max_prompt_bytes (see steadytext_limits()).';
        END IF;
    END IF;
END;
$$;

-- Queue limits under concurrency (1.4.0). Rows written by transactions that
-- have not committed are invisible to every other session's count, so a
-- count alone lets N open transactions each stay under a limit and commit N
-- times over it. Each enqueue under a limit therefore also announces its
-- rows where every session sees them at once, outside MVCC, before it
-- counts: a transaction-level advisory lock in shared mode (never waited on)
-- whose first key names the owner role (or all roles) and whose second
-- carries the transaction's running total (total * 256 + a free variant).
-- The lock goes with the transaction (commit, rollback, a rolled-back
-- savepoint), no earlier than its rows become visible, so a concurrent count
-- sees the rows, the reservation, or both (counted twice for an instant:
-- refusing is the safe side), never neither. Nothing waits: another session's
-- open transaction costs a count, never a lock wait.
--
-- Forgery: any login can take advisory locks. A reservation counts only from
-- a backend that holds ROW EXCLUSIVE on steadytext_queue (which only the
-- enqueue helpers, admins and workers can take), and a role's reservation
-- only from a backend whose session user may act for that role or sees every
-- request; for the total, each session user's reservations count at most
-- max_queue_per_role (what its real rows could take) when that is set. A
-- forged lock can thus take no more than its owner's own quota.

-- The first advisory key of a reservation: the owner role's, or all roles'
-- (NULL). Non-negative, so that pg_locks' oid columns compare as integers.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_quota_key(owner name)
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT hashtext('pg_steadytext quota ' || coalesce('role ' || owner::text, 'all')) & 2147483647
$$;

-- The running totals announced under quota key `key1` (see above), one row
-- per backend of this database that holds one: its highest.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_quota_announced(key1 integer)
RETURNS TABLE(pid integer, total bigint)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.pid, max(l.objid::text::bigint >> 8)
    FROM pg_catalog.pg_locks AS l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
      AND l.database = (SELECT d.oid FROM pg_catalog.pg_database AS d WHERE d.datname = current_database())
      AND l.classid::text::bigint = key1
    GROUP BY l.pid
$$;

-- Reservations on quota key `key1` announced by other backends of this
-- database (see above): the sum of each counted backend's running total.
-- `owner` NULL: the total over all roles.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_quota_inflight(key1 integer, owner name, per_role bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (
    WITH held AS (
        SELECT a.pid, a.total FROM @extschema@._steadytext_quota_announced(key1) AS a
        WHERE a.pid <> pg_catalog.pg_backend_pid()
    ), counted AS (
        SELECT a.usesysid, h.total
        FROM held AS h
        JOIN pg_catalog.pg_stat_activity AS a ON a.pid = h.pid
        WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_locks AS r
                      WHERE r.pid = h.pid AND r.locktype = 'relation' AND r.granted
                        AND r.relation = '@extschema@.steadytext_queue'::regclass
                        AND r.mode = 'RowExclusiveLock')
          AND (owner IS NULL
               OR pg_catalog.pg_has_role(a.usesysid, owner, 'MEMBER')
               OR @extschema@._steadytext_sees_all((SELECT u.rolname FROM pg_catalog.pg_roles AS u WHERE u.oid = a.usesysid)))
    )
    SELECT coalesce(sum(per_user), 0)::bigint
    FROM (SELECT CASE WHEN owner IS NULL AND per_role > 0 THEN least(sum(c.total), per_role) ELSE sum(c.total) END AS per_user
          FROM counted AS c GROUP BY c.usesysid) AS u);
END;
$$;

-- Announces `adding` more rows under quota key `key1` for this transaction
-- (see above): a shared advisory lock carrying the new running total. Never
-- waits: a variant another session holds exclusively (only a forger would)
-- is passed over; past 32 such, the total is announced one higher (counting
-- more than there is refuses sooner, never later).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_quota_reserve(key1 integer, adding bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    total bigint;
BEGIN
    SELECT coalesce(max(a.total), 0) INTO total
    FROM @extschema@._steadytext_quota_announced(key1) AS a WHERE a.pid = pg_catalog.pg_backend_pid();
    total := least(total + adding, 8388607);
    FOR i IN 0 .. 511 LOOP
        IF pg_catalog.pg_try_advisory_xact_lock_shared(key1,
               ((least(total + i / 32, 8388607) << 8) | (floor(random() * 256))::bigint)::integer) THEN
            RETURN;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'steadytext: could not announce % new requests under the queue limits (every reservation key is held by another session)', adding
        USING ERRCODE = 'lock_not_available',
              HINT = 'Another session holds advisory locks in the range pg_steadytext uses for its queue limits; find it in pg_locks.';
END;
$$;

-- The live (pending or processing) requests of `owner` (NULL: of all roles)
-- that count against a queue limit: the committed rows and this
-- transaction's own, hand-off copies left out, never more than limit + 1 of
-- them, plus what other open transactions announced under the owner's (or
-- all roles') quota key (_steadytext_quota_inflight, with per_role). For
-- _steadytext_check_queue_size.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_queued(owner name, "limit" bigint, per_role bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    -- two statements, so that a cached generic plan of either keeps its index
    -- (the owner's: steadytext_queue_owner_active_idx)
    IF owner IS NULL THEN
        SELECT count(*) INTO n
        FROM (SELECT 1 FROM @extschema@.steadytext_queue AS q
              WHERE q.status IN ('pending', 'processing') AND q.handoff_of IS NULL
              LIMIT "limit" + 1) AS s;
    ELSE
        SELECT count(*) INTO n
        FROM (SELECT 1 FROM @extschema@.steadytext_queue AS q
              WHERE q.owner_role = owner AND q.status IN ('pending', 'processing') AND q.handoff_of IS NULL
              LIMIT "limit" + 1) AS s;
    END IF;
    RETURN n + @extschema@._steadytext_quota_inflight(@extschema@._steadytext_quota_key(owner), owner, per_role);
END;
$$;

-- Raises 54000 (enqueueing nothing) when adding `adding` requests owned by
-- `owner` would take pending + processing past steadytext.max_queue_size
-- (all roles together) or steadytext.max_queue_per_role (that owner's);
-- unset or 0: unlimited. The message names the limit that was hit. Counts
-- the committed rows (and this transaction's own), never more than limit + 1
-- of them, plus what other open transactions announced (above), after
-- announcing its own. Hand-off copies are not counted: each stands for an
-- original still announced by its caller's transaction
-- (_steadytext_handoff_insert checks that). Called by the SECURITY DEFINER
-- enqueue, retry and hand-off helpers (it counts every role's rows).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_check_queue_size(fn text, adding bigint, owner name)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_size bigint := @extschema@._steadytext_limit('max_queue_size');
    per_role bigint := @extschema@._steadytext_limit('max_queue_per_role');
    queued bigint;
BEGIN
    IF adding <= 0 OR (max_size <= 0 AND per_role <= 0) THEN
        RETURN;
    END IF;
    -- what makes this backend's announcements count for others (see above),
    -- taken before the first row is written; no tenant can hold a mode it conflicts with
    LOCK TABLE @extschema@.steadytext_queue IN ROW EXCLUSIVE MODE;
    -- announce first, then count: of two concurrent enqueues, each sees the other's announcement
    PERFORM @extschema@._steadytext_quota_reserve(@extschema@._steadytext_quota_key(owner), adding);
    IF max_size > 0 THEN
        PERFORM @extschema@._steadytext_quota_reserve(@extschema@._steadytext_quota_key(NULL), adding);
        queued := @extschema@._steadytext_queued(NULL, max_size, per_role);
        IF queued + adding > max_size THEN
            RAISE EXCEPTION '%: queue is full: % pending/processing requests + % new would exceed steadytext.max_queue_size = %',
                fn, CASE WHEN queued > max_size THEN 'more than ' || max_size ELSE queued::text END, adding, max_size
                USING ERRCODE = 'program_limit_exceeded',
                      HINT = 'Wait for workers to drain the queue, or have an operator raise steadytext.max_queue_size.';
        END IF;
    END IF;
    IF per_role > 0 THEN
        queued := @extschema@._steadytext_queued(owner, per_role, per_role);
        IF queued + adding > per_role THEN
            RAISE EXCEPTION '%: queue quota of role % is full: % pending/processing requests + % new would exceed steadytext.max_queue_per_role = %',
                fn, quote_ident(owner), CASE WHEN queued > per_role THEN 'more than ' || per_role ELSE queued::text END,
                adding, per_role
                USING ERRCODE = 'program_limit_exceeded',
                      HINT = 'Wait for your requests to finish (or cancel some), or have an operator raise steadytext.max_queue_per_role.';
        END IF;
    END IF;
END;
$$;

-- priority: not NULL, at most steadytext.max_priority.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_check_priority(fn text, priority integer)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    top bigint;
BEGIN
    PERFORM @extschema@._steadytext_check_not_null(fn, 'priority', priority IS NULL);
    top := @extschema@._steadytext_limit('max_priority');
    IF priority > top THEN
        RAISE EXCEPTION '%: priority must be at most %, got %', fn, top, priority
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The ceiling is steadytext.max_priority, set by an operator (see steadytext_limits()).';
    END IF;
END;
$$;

-- ===========================================================================
-- One validation path per function_name
-- ===========================================================================
-- The public enqueue functions build `parameters` (jsonb, keyed by argument
-- name) and the SECURITY DEFINER helpers validate it here before storing
-- anything, so a direct call of a helper can store nothing the public
-- function would refuse: exactly the function's argument names, each of its
-- SQL type, each passing the same checks, in the same order, with the same
-- errors.

-- The argument `arg` of `parameters`, checked to be of kind `want` ('text':
-- a JSON string; 'integer': a JSON integer in int4's range; 'boolean';
-- 'text[]': a JSON array of strings and nulls); NULL if absent or JSON null;
-- 22023 naming the argument otherwise. The typed readers below wrap it.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_param(fn text, parameters jsonb, arg text, want text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v constant jsonb := parameters -> arg;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    CASE want
    WHEN 'text' THEN
        IF jsonb_typeof(v) <> 'string' THEN
            RAISE EXCEPTION '%: % must be text, got %', fn, arg, jsonb_typeof(v)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    WHEN 'integer' THEN
        IF jsonb_typeof(v) <> 'number' OR v::text !~ '^-?[0-9]{1,10}$'
           OR v::text::bigint NOT BETWEEN -2147483648 AND 2147483647 THEN
            RAISE EXCEPTION '%: % must be an integer, got %', fn, arg, left(v::text, 40)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    WHEN 'boolean' THEN
        IF jsonb_typeof(v) <> 'boolean' THEN
            RAISE EXCEPTION '%: % must be a boolean, got %', fn, arg, left(v::text, 40)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    WHEN 'text[]' THEN
        IF jsonb_typeof(v) <> 'array'
           OR EXISTS (SELECT 1 FROM jsonb_array_elements(v) AS e(x) WHERE jsonb_typeof(e.x) NOT IN ('string', 'null')) THEN
            RAISE EXCEPTION '%: % must be an array of text', fn, arg
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END CASE;
    RETURN v;
END;
$$;

-- The argument `arg` as text (see _steadytext_param).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_param_text(fn text, parameters jsonb, arg text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_param(fn, parameters, arg, 'text') #>> '{}'
$$;

-- The argument `arg` as an integer (int4).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_param_int(fn text, parameters jsonb, arg text)
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (@extschema@._steadytext_param(fn, parameters, arg, 'integer'))::integer
$$;

-- The argument `arg` as a boolean.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_param_bool(fn text, parameters jsonb, arg text)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (@extschema@._steadytext_param(fn, parameters, arg, 'boolean'))::boolean
$$;

-- The argument `arg` as text[], in order.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_param_text_array(fn text, parameters jsonb, arg text)
RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN v IS NOT NULL THEN
               ARRAY(SELECT e.x #>> '{}' FROM jsonb_array_elements(v) WITH ORDINALITY AS e(x, ord) ORDER BY e.ord)
           END
    FROM (SELECT @extschema@._steadytext_param(fn, parameters, arg, 'text[]') AS v) AS p
$$;

-- The arguments (parameters keys) of each steadytext function, in the order
-- the public function validates them; NULL for an unknown function_name.
-- (The arms are written from src/jobTypes.ts by `npm run build:sql`.)
CREATE OR REPLACE FUNCTION @extschema@._steadytext_arguments(function_name text)
RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE function_name
        -- @job-types arguments
        WHEN 'generate'        THEN ARRAY['prompt', 'max_tokens', 'use_cache', 'seed']
        WHEN 'generate_json'   THEN ARRAY['prompt', 'schema', 'max_tokens', 'use_cache', 'seed']
        WHEN 'generate_regex'  THEN ARRAY['prompt', 'pattern', 'max_tokens', 'use_cache', 'seed']
        WHEN 'generate_choice' THEN ARRAY['prompt', 'choices', 'max_tokens', 'use_cache', 'seed']
        WHEN 'embed'           THEN ARRAY['text_input', 'use_cache']
        WHEN 'rerank'          THEN ARRAY['query', 'documents', 'task', 'use_cache', 'seed']
    END
$$;

-- The model role that serves a function ('generation', 'embedding',
-- 'reranking'); NULL for an unknown function_name. (The arms are written
-- from src/jobTypes.ts by `npm run build:sql`.)
CREATE OR REPLACE FUNCTION @extschema@._steadytext_model_role(function_name text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE function_name
        -- @job-types model-roles
        WHEN 'generate'        THEN 'generation'
        WHEN 'generate_json'   THEN 'generation'
        WHEN 'generate_regex'  THEN 'generation'
        WHEN 'generate_choice' THEN 'generation'
        WHEN 'embed'           THEN 'embedding'
        WHEN 'rerank'          THEN 'reranking'
    END
$$;

-- The one validation of a request's parameters (see above). `fn` names the
-- public function in errors. skip: arguments validated by the caller already
-- (a batch's items). Raises what the public function raises for the same
-- values; 22023 for an unknown function_name, a missing or unknown argument,
-- or a value of the wrong JSON type (which only a direct call can pass).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_validate(fn text, function_name text, parameters jsonb,
                                                           skip text[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    args constant text[] := @extschema@._steadytext_arguments(function_name);
    extra text;
    arg text;
    max_prompt constant bigint := @extschema@._steadytext_limit('max_prompt_bytes');
BEGIN
    IF args IS NULL THEN
        RAISE EXCEPTION '%: function_name % is not a steadytext function', fn, coalesce(quote_literal(function_name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF parameters IS NULL OR jsonb_typeof(parameters) <> 'object' THEN
        RAISE EXCEPTION '%: parameters must be a JSON object', fn
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT k INTO extra FROM jsonb_object_keys(parameters) AS k WHERE NOT k = ANY (args) ORDER BY k LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '%: % is not an argument of %', fn, quote_literal(extra), fn
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH arg IN ARRAY args LOOP
        CONTINUE WHEN arg = ANY (skip);
        IF NOT parameters ? arg THEN
            RAISE EXCEPTION '%: % must not be NULL', fn, arg
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        CASE arg
            WHEN 'prompt', 'text_input', 'query', 'task' THEN
                PERFORM @extschema@._steadytext_check_text(fn, arg, @extschema@._steadytext_param_text(fn, parameters, arg),
                                                           max_prompt);
            WHEN 'schema' THEN
                PERFORM @extschema@._steadytext_check_schema(fn,
                    CASE WHEN jsonb_typeof(parameters -> 'schema') = 'null' THEN NULL ELSE parameters -> 'schema' END);
            WHEN 'pattern' THEN
                PERFORM @extschema@._steadytext_check_pattern(fn, @extschema@._steadytext_param_text(fn, parameters, arg));
            WHEN 'choices' THEN
                PERFORM @extschema@._steadytext_check_choices(fn, @extschema@._steadytext_param_text_array(fn, parameters, arg));
            WHEN 'documents' THEN
                PERFORM @extschema@._steadytext_check_text_array(fn, 'documents',
                    @extschema@._steadytext_param_text_array(fn, parameters, arg),
                    @extschema@._steadytext_limit('max_rerank_documents'), 'steadytext.max_rerank_documents', false, true);
            WHEN 'max_tokens' THEN
                PERFORM @extschema@._steadytext_check_max_tokens(fn, @extschema@._steadytext_param_int(fn, parameters, arg));
                -- the smallest output the schema / pattern allows must fit max_tokens
                -- (both were checked already: they come before max_tokens)
                IF function_name = 'generate_json' THEN
                    PERFORM @extschema@._steadytext_check_schema_budget(fn, parameters -> 'schema',
                        @extschema@._steadytext_param_int(fn, parameters, arg));
                ELSIF function_name = 'generate_regex' THEN
                    PERFORM @extschema@._steadytext_check_pattern_budget(fn,
                        @extschema@._steadytext_param_text(fn, parameters, 'pattern'),
                        @extschema@._steadytext_param_int(fn, parameters, arg));
                END IF;
            WHEN 'seed' THEN
                PERFORM @extschema@._steadytext_check_seed(fn, @extschema@._steadytext_param_int(fn, parameters, arg));
            WHEN 'use_cache' THEN
                PERFORM @extschema@._steadytext_check_not_null(fn, 'use_cache',
                    @extschema@._steadytext_param_bool(fn, parameters, arg) IS NULL);
        END CASE;
    END LOOP;
END;
$$;

-- ---------------------------------------------------------------------------
-- sql/src/25-structured-validation.sql
-- ---------------------------------------------------------------------------
-- Validation of choices, regex patterns and JSON schemas: the structured-output contract.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- choices: 2..max_choices non-empty, distinct strings (SteadyText's contract:
-- a choice between fewer than two options is no choice).
CREATE OR REPLACE FUNCTION _steadytext_check_choices(fn text, choices text[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dup text;
BEGIN
    PERFORM @extschema@._steadytext_check_text_array(fn, 'choices', choices, @extschema@._steadytext_limit('max_choices'),
                                                     'steadytext.max_choices', false, false);
    SELECT c INTO dup FROM unnest(choices) AS c GROUP BY c HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '%: choices must be distinct, % appears more than once', fn, quote_literal(dup)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(choices) < 2 THEN
        RAISE EXCEPTION '%: choices must hold at least 2 distinct strings, got %', fn, cardinality(choices)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;

-- The regex dialect a grammar expresses exactly; the engine's parser
-- (src/engine/regexGrammar.ts) is the same, and test/structured/regexCorpus.test.ts
-- proves both give the same verdict, SQLSTATE and character position:
--   literals; \d \w \s \D \W \S \n \t \r \f \v \uHHHH; any escaped
--   non-alphanumeric character; [...] classes with ranges and negation (a ']'
--   first in a class is a literal); .; (...) and (?:...); |;
--   * + ? {n} {n,} {,m} {n,m}; ^ only at the very start, $ only at the very end.
-- min_bytes: the shortest output the engine's grammar writes for the
-- pattern, in bytes (it must fit max_tokens); json_string: as the body of a
-- JSON string (quotes, backslashes and control characters escaped). Returns a NULL sqlstate for a
-- pattern in the dialect, else (sqlstate, pos, what):
--   0A000 a construct a grammar cannot express; 22023 a malformed pattern;
--   54000 a count above 1000, more than 10000 character positions once
--   counted repeats are multiplied out (X{0} counts X once), or a grammar
--   whose sampler work per character is above 10000.
-- work: that measure (the engine's grammarWork, src/engine/regexGrammar.ts,
-- which explains and calibrates it): over the positions of the expansion,
-- each with the character offsets lo..hi at which it can match and what can
-- follow it (the next part one step, however many branches it has, and each
-- position reached only by skipping an optional part one more), the most any
-- one offset holds of sum (4 + follow)^2. llama.cpp's sampler keeps a
-- parse stack per position that can match and walks each past what it can
-- skip, so nested optional repeats such as ([ab]?[ab]?){200} held a worker
-- for minutes. NULL when the pattern is refused before it is measured.
-- One pass, no recursion, no regex matching on the pattern as a whole: the
-- positions (at most 10000) are listed as the pass goes, each shifted once
-- per group it sits in.
CREATE OR REPLACE FUNCTION _steadytext_structured_regex(
    pattern text, json_string boolean DEFAULT false,
    OUT sqlstate text, OUT pos integer, OUT what text, OUT min_bytes integer, OUT work bigint)
RETURNS record
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_repeat constant integer := 1000;
    max_weight constant numeric := 10000;
    max_work constant bigint := 10000;
    all_chars constant int4multirange := int4multirange(int4range(1, 55296), int4range(57344, 1114112));
    digit constant int4multirange := int4multirange(int4range(48, 58));
    word constant int4multirange := int4multirange(int4range(48, 58), int4range(65, 91), int4range(95, 96), int4range(97, 123));
    space constant int4multirange := int4multirange(int4range(9, 14), int4range(32, 33), int4range(160, 161),
        int4range(5760, 5761), int4range(8192, 8203), int4range(8232, 8234), int4range(8239, 8240),
        int4range(8287, 8288), int4range(12288, 12289), int4range(65279, 65280));
    c text[];
    n integer;
    last integer;
    i integer;
    ch text;
    -- group stack: where each open group started, and its parent's sums
    open_pos integer[] := '{}';
    saved_alt numeric[] := '{}';
    saved_seq numeric[] := '{}';
    alt_sum numeric := 0;     -- weight of the finished alternatives of the current group
    seq_sum numeric := 0;     -- weight of the current alternative
    last_w numeric;           -- weight of the last atom (NULL: nothing to repeat)
    -- shortest output in bytes, tracked like the weights
    saved_alt_min numeric[] := '{}';
    saved_seq_min numeric[] := '{}';
    alt_min numeric;          -- NULL: no finished alternative yet
    seq_min numeric := 0;
    last_min numeric;
    atom_min integer;
    wide boolean;
    plain int4multirange;
    quantified boolean := false;
    w numeric;
    qmin integer;
    qmax integer;
    qpos integer;
    a text;
    b text;
    comma boolean;
    j integer;
    negate boolean;
    first boolean;
    cls int4multirange;
    lo integer;
    lo_set int4multirange;
    esc_cp integer;
    esc_set int4multirange;
    dash integer;
    depth integer;
    -- The expansion's positions: the offsets lo..hi (hi NULL: unbounded) at
    -- which each can match, and its follow count (as defined above).
    plo integer[] := '{}';
    phi integer[] := '{}';
    pfol integer[] := '{}';
    np integer := 0;
    p_over boolean := false;  -- more than max_weight positions: the weight check refuses the pattern
    -- Open positions (in the Last set of what is being built: they gain what
    -- comes next), one stack segment per open group. A position is "fresh"
    -- until something with positions follows it: that is one step (plus what
    -- it reaches inside by skipping); once it has skipped an optional part
    -- with positions, every position it can reach counts ("skipped"). The
    -- current sequence's entries: skipped ones so_start+1..so_fresh, each
    -- gaining s_facc - so_base (the first positions of what was committed
    -- since), fresh ones so_fresh+1..so_lstart, the last item's
    -- so_lstart+1..n_so (so_sk: skipped inside it). Finished alternatives'
    -- entries: ao_idx, ao_sk.
    so_idx integer[] := '{}';
    so_base integer[] := '{}';
    so_sk boolean[] := '{}';
    n_so integer := 0;
    ao_idx integer[] := '{}';
    ao_sk boolean[] := '{}';
    n_ao integer := 0;
    -- The current group: its positions follow f_start; its segments start
    -- after so_start and ao_start.
    f_start integer := 0;
    so_start integer := 0;
    so_fresh integer := 0;
    so_lstart integer := 0;
    ao_start integer := 0;
    -- The current sequence (committed items): length in characters (max NULL:
    -- unbounded), whether it can be empty, whether it has positions, its first
    -- positions reached directly and only by skipping, the running sum of
    -- its items' first positions.
    s_min integer := 0;
    s_max integer := 0;
    s_nul boolean := true;
    s_haspos boolean := false;
    s_direct integer := 0;
    s_skip integer := 0;
    s_facc integer := 0;
    -- The finished alternatives of the current group.
    a_has boolean := false;
    a_min integer;
    a_max integer;
    a_nul boolean := false;
    a_direct integer := 0;
    a_skip integer := 0;
    -- The last item (what a quantifier applies to), positions l_start..np.
    l_start integer;
    l_min integer;
    l_max integer;
    l_nul boolean;
    l_direct integer;
    l_skip integer;
    frames integer[] := '{}';  -- saved group state, 17 entries per open group (overwritten, never sliced)
    fb integer;
    copies integer;
    sz integer;
    stp integer;
    allx integer;
    later integer;
    r_fresh integer;
    r_skipped integer;
    r_skips boolean;
    opn boolean;
    looping boolean;
    dst integer;
    isopen boolean[];
    issk boolean[];
    tmp_idx integer[];
    tmp_sk boolean[];
BEGIN
    c := string_to_array(pattern, NULL);
    n := coalesce(cardinality(c), 0);
    IF n = 0 THEN
        sqlstate := '22023'; what := 'an empty pattern'; RETURN;
    END IF;
    i := CASE WHEN c[1] = '^' THEN 2 ELSE 1 END;
    last := n;
    IF n >= i AND c[n] = '$' THEN
        j := n - 1;
        WHILE j >= 1 AND c[j] = '\' LOOP j := j - 1; END LOOP;
        IF (n - 1 - j) % 2 = 0 THEN last := n - 1; END IF;
    END IF;

    -- One pass more than the pattern has characters, with ch NULL: it commits
    -- the last item (below) and leaves the loop.
    WHILE i <= last + 1 LOOP
        ch := CASE WHEN i <= last THEN c[i] END;
        IF ch IN ('*', '+', '?', '{') AND last_w IS NOT NULL THEN
            -- a quantifier
            qpos := i;
            IF ch = '*' THEN qmin := 0; qmax := NULL; i := i + 1;
            ELSIF ch = '+' THEN qmin := 1; qmax := NULL; i := i + 1;
            ELSIF ch = '?' THEN qmin := 0; qmax := 1; i := i + 1;
            ELSE
                j := i + 1; a := ''; b := ''; comma := false;
                WHILE j <= last AND c[j] IN ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9') LOOP
                    a := a || c[j]; j := j + 1;
                END LOOP;
                IF j <= last AND c[j] = ',' THEN
                    comma := true; j := j + 1;
                    WHILE j <= last AND c[j] IN ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9') LOOP
                        b := b || c[j]; j := j + 1;
                    END LOOP;
                END IF;
                IF j > last OR c[j] <> '}' OR (a = '' AND NOT comma) THEN
                    sqlstate := '22023'; pos := i;
                    what := '''{'' that is not a quantifier {n}, {n,}, {,m} or {n,m} (escape it as \{)'; RETURN;
                END IF;
                IF length(a) > 4 OR length(b) > 4 OR coalesce(nullif(a, '')::integer, 0) > max_repeat
                   OR coalesce(nullif(b, '')::integer, 0) > max_repeat THEN
                    sqlstate := '54000'; pos := i; what := format('a repetition count above %s', max_repeat); RETURN;
                END IF;
                qmin := coalesce(nullif(a, '')::integer, 0);
                qmax := CASE WHEN NOT comma THEN qmin WHEN b = '' THEN NULL ELSE b::integer END;
                IF qmax < qmin THEN
                    sqlstate := '22023'; pos := i; what := format('the quantifier {%s,%s} has max < min', qmin, qmax); RETURN;
                END IF;
                i := j + 1;
            END IF;
            IF quantified THEN
                sqlstate := '22023'; pos := qpos; what := 'a quantifier cannot follow another quantifier'; RETURN;
            END IF;
            quantified := true;
            seq_min := seq_min - last_min + last_min * qmin;
            last_min := last_min * qmin;
            w := last_w * greatest(coalesce(qmax, qmin + 1), 1);
            seq_sum := seq_sum - last_w + w;
            last_w := w;
            -- positions: qmin copies, then qmax - qmin nested optional ones or
            -- one looping copy (X{n,}), as llama.cpp expands them. Inside the
            -- repeat copy k is followed by copy k+1 (itself when looping), the
            -- copies after that only by skipping; leaving early (an optional
            -- copy's end, the loop's exit) skips the rest.
            IF NOT p_over THEN
                copies := coalesce(qmax, qmin + 1);
                sz := np - l_start + 1;
                IF copies = 0 OR sz = 0 THEN
                    np := l_start - 1; n_so := so_lstart;
                    l_min := 0; l_max := 0; l_nul := true; l_direct := 0; l_skip := 0;
                ELSIF np + (copies - 1) * sz > max_weight THEN
                    p_over := true;
                ELSE
                    allx := l_direct + l_skip;
                    stp := CASE WHEN l_direct > 0 THEN 1 ELSE 0 END + l_skip;
                    isopen := array_fill(false, ARRAY[sz]);
                    issk := array_fill(false, ARRAY[sz]);
                    FOR e IN so_lstart + 1..n_so LOOP
                        isopen[so_idx[e] - l_start + 1] := true;
                        issk[so_idx[e] - l_start + 1] := so_sk[e];
                    END LOOP;
                    n_so := so_lstart;
                    -- copy 0 last: it overwrites the item in place
                    FOR k IN REVERSE copies - 1..0 LOOP
                        looping := qmax IS NULL AND k = qmin;
                        later := CASE WHEN looping THEN 0 ELSE copies - 1 - k END;
                        IF later = 0 AND NOT looping THEN
                            r_fresh := 0; r_skipped := 0; r_skips := false;
                        ELSE
                            r_fresh := stp + CASE WHEN l_nul AND NOT looping THEN (later - 1) * allx ELSE 0 END;
                            r_skipped := allx * CASE WHEN l_nul AND NOT looping THEN later ELSE 1 END;
                            r_skips := true;
                        END IF;
                        opn := l_nul OR k >= qmin - 1;
                        FOR q IN 1..sz LOOP
                            dst := CASE WHEN k = 0 THEN l_start - 1 ELSE np + (k - 1) * sz END + q;
                            plo[dst] := plo[l_start + q - 1] + k * l_min;
                            phi[dst] := CASE WHEN looping THEN NULL WHEN k = 0 THEN phi[l_start + q - 1]
                                             ELSE phi[l_start + q - 1] + k * l_max END;
                            pfol[dst] := pfol[l_start + q - 1]
                                         + CASE WHEN NOT isopen[q] THEN 0 WHEN issk[q] THEN r_skipped ELSE r_fresh END;
                            IF isopen[q] AND opn THEN
                                n_so := n_so + 1; so_idx[n_so] := dst; so_sk[n_so] := issk[q] OR r_skips;
                            END IF;
                        END LOOP;
                    END LOOP;
                    np := np + (copies - 1) * sz;
                    l_max := CASE WHEN qmax IS NOT NULL THEN qmax * l_max END;
                    l_skip := l_skip + CASE WHEN l_nul THEN (copies - 1) * allx ELSE 0 END;
                    l_min := qmin * l_min;
                    l_nul := qmin = 0 OR l_nul;
                END IF;
            END IF;
            IF i <= last AND c[i] = '?' THEN
                sqlstate := '0A000'; pos := i; what := 'a lazy quantifier'; RETURN;
            ELSIF i <= last AND c[i] = '+' THEN
                sqlstate := '0A000'; pos := i; what := 'a possessive quantifier'; RETURN;
            END IF;
            CONTINUE;
        END IF;

        -- Anything but a quantifier ends the last item: commit it to the
        -- sequence, shifted after what precedes it. The sequence's fresh
        -- positions step into it; its skipped ones gain its first positions;
        -- both stay open only if it can be empty (then the fresh ones have
        -- skipped it).
        IF last_w IS NOT NULL AND NOT p_over THEN
            s_min := s_min + l_min;
            IF np >= l_start THEN
                FOR q IN l_start..np LOOP
                    plo[q] := plo[q] + s_min - l_min;
                    phi[q] := phi[q] + s_max;
                END LOOP;
                stp := CASE WHEN l_direct > 0 THEN 1 ELSE 0 END + l_skip;
                s_facc := s_facc + l_direct + l_skip;
                FOR e IN so_fresh + 1..so_lstart LOOP
                    pfol[so_idx[e]] := pfol[so_idx[e]] + stp; so_base[e] := s_facc;
                END LOOP;
                IF l_nul THEN
                    so_fresh := so_lstart;
                ELSE
                    FOR e IN so_start + 1..so_fresh LOOP
                        pfol[so_idx[e]] := pfol[so_idx[e]] + s_facc - so_base[e];
                    END LOOP;
                    so_fresh := so_start;
                END IF;
                tmp_idx := so_idx[so_lstart + 1:n_so];
                tmp_sk := so_sk[so_lstart + 1:n_so];
                n_so := so_fresh;
                FOR e IN 1..coalesce(cardinality(tmp_idx), 0) LOOP
                    IF tmp_sk[e] THEN n_so := n_so + 1; so_idx[n_so] := tmp_idx[e]; so_base[n_so] := s_facc; END IF;
                END LOOP;
                so_fresh := n_so;
                FOR e IN 1..coalesce(cardinality(tmp_idx), 0) LOOP
                    IF NOT tmp_sk[e] THEN n_so := n_so + 1; so_idx[n_so] := tmp_idx[e]; END IF;
                END LOOP;
                so_lstart := n_so;
                IF NOT s_haspos THEN
                    s_direct := l_direct; s_skip := l_skip;
                ELSIF s_nul THEN
                    s_skip := s_skip + l_direct + l_skip;
                END IF;
                s_haspos := true;
                s_nul := s_nul AND l_nul;
            END IF;
            s_max := s_max + l_max;
        END IF;
        EXIT WHEN ch IS NULL;
        -- '|' and ')' end the sequence: its open positions are final, and it
        -- joins the group's alternatives.
        IF ch IN ('|', ')') AND NOT p_over THEN
            FOR e IN so_start + 1..so_fresh LOOP
                pfol[so_idx[e]] := pfol[so_idx[e]] + s_facc - so_base[e];
                n_ao := n_ao + 1; ao_idx[n_ao] := so_idx[e]; ao_sk[n_ao] := true;
            END LOOP;
            FOR e IN so_fresh + 1..n_so LOOP
                n_ao := n_ao + 1; ao_idx[n_ao] := so_idx[e]; ao_sk[n_ao] := false;
            END LOOP;
            n_so := so_start; so_fresh := so_start; so_lstart := so_start;
            a_min := CASE WHEN a_has THEN least(a_min, s_min) ELSE s_min END;
            a_max := CASE WHEN NOT a_has THEN s_max WHEN a_max IS NULL OR s_max IS NULL THEN NULL ELSE greatest(a_max, s_max) END;
            a_nul := a_nul OR s_nul; a_direct := a_direct + s_direct; a_skip := a_skip + s_skip; a_has := true;
            s_min := 0; s_max := 0; s_nul := true; s_haspos := false; s_direct := 0; s_skip := 0; s_facc := 0;
        END IF;

        IF ch = '|' THEN
            alt_sum := alt_sum + seq_sum; seq_sum := 0; last_w := NULL; quantified := false;
            alt_min := least(alt_min, seq_min); seq_min := 0;
            i := i + 1;
            CONTINUE;
        ELSIF ch = '(' THEN
            IF i + 1 <= last AND c[i + 1] = '?' THEN
                IF c[i + 2] IS NOT DISTINCT FROM ':' THEN
                    j := i + 3;
                ELSE
                    sqlstate := '0A000'; pos := i;
                    what := 'a (?...) group other than (?:...) (lookaround, named or flag groups)'; RETURN;
                END IF;
            ELSE
                j := i + 1;
            END IF;
            open_pos := open_pos || i;
            saved_alt := saved_alt || alt_sum;
            saved_seq := saved_seq || seq_sum;
            saved_alt_min := saved_alt_min || alt_min;
            saved_seq_min := saved_seq_min || seq_min;
            alt_sum := 0; seq_sum := 0; last_w := NULL; quantified := false;
            alt_min := NULL; seq_min := 0;
            fb := 17 * (cardinality(open_pos) - 1);
            frames[fb + 1] := f_start; frames[fb + 2] := so_start; frames[fb + 3] := so_fresh;
            frames[fb + 4] := ao_start; frames[fb + 5] := s_min; frames[fb + 6] := s_max;
            frames[fb + 7] := s_nul::integer; frames[fb + 8] := s_haspos::integer; frames[fb + 9] := s_direct;
            frames[fb + 10] := s_skip; frames[fb + 11] := s_facc; frames[fb + 12] := a_has::integer;
            frames[fb + 13] := a_min; frames[fb + 14] := a_max; frames[fb + 15] := a_nul::integer;
            frames[fb + 16] := a_direct; frames[fb + 17] := a_skip;
            f_start := np; so_start := n_so; so_fresh := n_so; so_lstart := n_so; ao_start := n_ao;
            s_min := 0; s_max := 0; s_nul := true; s_haspos := false; s_direct := 0; s_skip := 0; s_facc := 0;
            a_has := false; a_min := NULL; a_max := NULL; a_nul := false; a_direct := 0; a_skip := 0;
            i := j;
            CONTINUE;
        ELSIF ch = ')' THEN
            depth := cardinality(open_pos);
            IF depth = 0 THEN
                sqlstate := '22023'; pos := i; what := 'an unmatched '')'''; RETURN;
            END IF;
            w := alt_sum + seq_sum;
            alt_sum := saved_alt[depth];
            seq_sum := saved_seq[depth] + w;
            last_min := least(alt_min, seq_min);
            alt_min := saved_alt_min[depth];
            seq_min := saved_seq_min[depth] + last_min;
            open_pos := open_pos[1:depth - 1];
            saved_alt := saved_alt[1:depth - 1];
            saved_seq := saved_seq[1:depth - 1];
            saved_alt_min := saved_alt_min[1:depth - 1];
            saved_seq_min := saved_seq_min[1:depth - 1];
            last_w := w; quantified := false;
            -- the group becomes the enclosing sequence's last item
            l_start := f_start + 1; l_min := a_min; l_max := a_max; l_nul := a_nul;
            l_direct := a_direct; l_skip := a_skip;
            IF NOT p_over THEN
                FOR e IN ao_start + 1..n_ao LOOP
                    n_so := n_so + 1; so_idx[n_so] := ao_idx[e]; so_sk[n_so] := ao_sk[e];
                END LOOP;
            END IF;
            n_ao := ao_start; so_lstart := so_start;
            fb := 17 * (depth - 1);
            f_start := frames[fb + 1]; so_start := frames[fb + 2]; so_fresh := frames[fb + 3];
            ao_start := frames[fb + 4]; s_min := frames[fb + 5]; s_max := frames[fb + 6];
            s_nul := frames[fb + 7]::boolean; s_haspos := frames[fb + 8]::boolean; s_direct := frames[fb + 9];
            s_skip := frames[fb + 10]; s_facc := frames[fb + 11]; a_has := frames[fb + 12]::boolean;
            a_min := frames[fb + 13]; a_max := frames[fb + 14]; a_nul := frames[fb + 15]::boolean;
            a_direct := frames[fb + 16]; a_skip := frames[fb + 17];
            i := i + 1;
            CONTINUE;
        ELSIF ch IN ('*', '+', '?', '{') THEN
            sqlstate := '22023'; pos := i; what := format('''%s'' with nothing to repeat', ch); RETURN;
        ELSIF ch = '^' THEN
            sqlstate := '0A000'; pos := i; what := 'the anchor ''^'' anywhere but the very start'; RETURN;
        ELSIF ch = '$' THEN
            sqlstate := '0A000'; pos := i; what := 'the anchor ''$'' anywhere but the very end'; RETURN;
        ELSIF ch = '[' THEN
            atom_min := NULL;  -- set below from the class's lowest character
            j := i;  -- where the class starts
            i := i + 1;
            negate := false;
            IF i <= last AND c[i] = '^' THEN negate := true; i := i + 1; END IF;
            wide := negate;
            cls := '{}';
            first := true;
            LOOP
                IF i > last THEN
                    sqlstate := '22023'; pos := j; what := 'an unclosed character class'; RETURN;
                END IF;
                EXIT WHEN c[i] = ']' AND NOT first;
                first := false;
                lo := NULL; lo_set := NULL;
                -- one class atom, then maybe '-' and a second one (a range)
                FOR k IN 1..2 LOOP
                    esc_cp := NULL; esc_set := NULL;
                    IF c[i] = '\' THEN
                        IF i + 1 > n THEN
                            sqlstate := '22023'; pos := i; what := 'a trailing backslash'; RETURN;
                        END IF;
                        ch := c[i + 1];
                        IF ch = 'd' THEN esc_set := digit;
                        ELSIF ch = 'D' THEN esc_set := all_chars - digit; wide := true;
                        ELSIF ch = 'w' THEN esc_set := word;
                        ELSIF ch = 'W' THEN esc_set := all_chars - word; wide := true;
                        ELSIF ch = 's' THEN esc_set := space; wide := true;
                        ELSIF ch = 'S' THEN esc_set := all_chars - space; wide := true;
                        ELSIF ch = 'n' THEN esc_cp := 10;
                        ELSIF ch = 't' THEN esc_cp := 9;
                        ELSIF ch = 'r' THEN esc_cp := 13;
                        ELSIF ch = 'f' THEN esc_cp := 12;
                        ELSIF ch = 'v' THEN esc_cp := 11;
                        ELSIF ch = 'u' THEN
                            a := array_to_string(c[i + 2:i + 5], '');
                            IF a !~ '^[0-9A-Fa-f]{4}$' THEN
                                sqlstate := '22023'; pos := i; what := '\u not followed by 4 hex digits'; RETURN;
                            END IF;
                            esc_cp := ('x' || lpad(a, 8, '0'))::bit(32)::integer;
                            IF esc_cp = 0 OR esc_cp BETWEEN 55296 AND 57343 THEN
                                sqlstate := '22023'; pos := i; what := format('\u%s is not a character text can hold', a); RETURN;
                            END IF;
                            i := i + 4;
                        ELSIF ch IN ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9') THEN
                            sqlstate := '0A000'; pos := i; what := format('a backreference or numeric escape (\%s)', ch); RETURN;
                        ELSIF (ascii(ch) BETWEEN 65 AND 90 OR ascii(ch) BETWEEN 97 AND 122) THEN
                            sqlstate := '0A000'; pos := i; what := format('the escape \%s', ch); RETURN;
                        ELSE
                            esc_cp := ascii(ch);
                        END IF;
                        i := i + 2;
                    ELSE
                        IF c[i] = '[' AND i + 1 <= last AND c[i + 1] IN (':', '.', '=') THEN
                            sqlstate := '0A000'; pos := i; what := format('a POSIX bracket expression ([%s)', c[i + 1]); RETURN;
                        END IF;
                        esc_cp := ascii(c[i]);
                        i := i + 1;
                    END IF;
                    IF k = 1 THEN
                        lo := esc_cp; lo_set := esc_set;
                        EXIT WHEN NOT (c[i] IS NOT DISTINCT FROM '-' AND i + 1 <= last AND c[i + 1] <> ']');
                        dash := i;
                        i := i + 1;
                        CONTINUE;
                    END IF;
                    IF lo_set IS NOT NULL OR esc_set IS NOT NULL THEN
                        sqlstate := '22023'; pos := dash; what := 'a range with a class escape as an end'; RETURN;
                    END IF;
                    IF esc_cp < lo THEN
                        sqlstate := '22023'; pos := dash; what := 'a range out of order'; RETURN;
                    END IF;
                    cls := cls + int4multirange(int4range(lo, esc_cp, '[]'));
                    lo := NULL;
                END LOOP;
                IF lo_set IS NOT NULL THEN
                    cls := cls + lo_set;
                ELSIF lo IS NOT NULL THEN
                    cls := cls + int4multirange(int4range(lo, lo, '[]'));
                END IF;
            END LOOP;
            i := i + 1;  -- ]
            IF negate AND all_chars <@ cls THEN
                sqlstate := '22023'; pos := j; what := 'a character class that matches nothing'; RETURN;
            END IF;
            cls := CASE WHEN negate THEN all_chars - cls ELSE cls * all_chars END;
            -- what the grammar generates: wide classes keep their ASCII part when they have one
            IF wide AND NOT isempty(cls * int4multirange(int4range(1, 128))) THEN
                cls := cls * int4multirange(int4range(1, 128));
            END IF;
            IF NOT json_string THEN
                atom_min := @extschema@._steadytext_structured_char_bytes(lower(cls), false);
            ELSE
                plain := cls - int4multirange(int4range(0, 32), int4range(34, 35), int4range(92, 93));
                atom_min := least(
                    CASE WHEN NOT isempty(plain) THEN @extschema@._steadytext_structured_char_bytes(lower(plain), true) END,
                    CASE WHEN cls @> 34 OR cls @> 92 THEN 2 END);
                IF atom_min IS NULL THEN  -- control characters only: their escapes
                    SELECT min(@extschema@._steadytext_structured_char_bytes(x, true)) INTO atom_min
                      FROM unnest(cls * int4multirange(int4range(1, 32))) AS r, generate_series(lower(r), upper(r) - 1) AS x;
                END IF;
            END IF;
        ELSIF ch = '\' THEN
            IF i + 1 > n THEN
                sqlstate := '22023'; pos := i; what := 'a trailing backslash'; RETURN;
            END IF;
            ch := c[i + 1];
            atom_min := @extschema@._steadytext_structured_char_bytes(ascii(ch), json_string);  -- stands for itself
            IF ch = 'u' THEN
                a := array_to_string(c[i + 2:i + 5], '');
                IF a !~ '^[0-9A-Fa-f]{4}$' THEN
                    sqlstate := '22023'; pos := i; what := '\u not followed by 4 hex digits'; RETURN;
                END IF;
                esc_cp := ('x' || lpad(a, 8, '0'))::bit(32)::integer;
                IF esc_cp = 0 OR esc_cp BETWEEN 55296 AND 57343 THEN
                    sqlstate := '22023'; pos := i; what := format('\u%s is not a character text can hold', a); RETURN;
                END IF;
                atom_min := @extschema@._steadytext_structured_char_bytes(esc_cp, json_string);
                i := i + 4;
            ELSIF ch IN ('d', 'w', 's', 'D', 'W', 'S') THEN
                atom_min := 1;
            ELSIF ch IN ('n', 't', 'r', 'f', 'v') THEN
                atom_min := @extschema@._steadytext_structured_char_bytes(
                    CASE ch WHEN 'n' THEN 10 WHEN 't' THEN 9 WHEN 'r' THEN 13 WHEN 'f' THEN 12 ELSE 11 END, json_string);
            ELSIF ch IN ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9') THEN
                sqlstate := '0A000'; pos := i; what := format('a backreference or numeric escape (\%s)', ch); RETURN;
            ELSIF (ascii(ch) BETWEEN 65 AND 90 OR ascii(ch) BETWEEN 97 AND 122) THEN
                sqlstate := '0A000'; pos := i; what := format('the escape \%s', ch); RETURN;
            END IF;
            i := i + 2;
        ELSE
            atom_min := CASE WHEN ch = '.' THEN 1 ELSE @extschema@._steadytext_structured_char_bytes(ascii(ch), json_string) END;
            i := i + 1;  -- a literal: ., ], } and every other character
        END IF;
        -- an atom of weight 1 ended: one position, open
        last_w := 1; seq_sum := seq_sum + 1; quantified := false;
        last_min := atom_min; seq_min := seq_min + atom_min;
        IF NOT p_over THEN
            np := np + 1; plo[np] := 0; phi[np] := 0; pfol[np] := 0;
            n_so := n_so + 1; so_idx[n_so] := np; so_sk[n_so] := false;
        END IF;
        l_start := np; l_min := 1; l_max := 1; l_nul := false; l_direct := 1; l_skip := 0;
    END LOOP;

    depth := cardinality(open_pos);
    IF depth > 0 THEN
        sqlstate := '22023'; pos := open_pos[depth]; what := 'an unclosed group'; RETURN;
    END IF;
    w := alt_sum + seq_sum;
    min_bytes := least(alt_min, seq_min);
    IF w > max_weight THEN
        sqlstate := '54000';
        what := format('an expansion to %s character positions (counted repeats multiplied out), over the limit of %s',
                       w, max_weight);
        RETURN;
    END IF;
    -- The end closes the sequence as ')' does (the loop's last pass committed
    -- its last item): open positions are followed by nothing more.
    FOR e IN so_start + 1..so_fresh LOOP
        pfol[so_idx[e]] := pfol[so_idx[e]] + s_facc - so_base[e];
    END LOOP;
    -- The most any offset holds of sum (4 + follow)^2: ends before starts at
    -- the same offset ([lo, hi] is inclusive), peers summed together.
    SELECT coalesce(max(run), 0) INTO work
      FROM (SELECT sum(d) OVER (ORDER BY k, d) AS run
              FROM (SELECT plo[q] AS k, (4 + pfol[q])::bigint * (4 + pfol[q]) AS d FROM generate_series(1, np) AS q
                    UNION ALL
                    SELECT phi[q] + 1, -(4 + pfol[q])::bigint * (4 + pfol[q]) FROM generate_series(1, np) AS q
                     WHERE phi[q] IS NOT NULL) AS ev) AS r;
    IF work > max_work THEN
        sqlstate := '54000';
        what := format('a grammar whose sampler work per character is %s, over the limit of %s (optional or '
                       'variable-length parts repeated one after another, like (a?){100} or (a|ab){1000}, let too '
                       'many grammar positions match the same character: write them unambiguously, like a{0,100})',
                       work, max_work);
    END IF;
END;
$$;

-- The verdict and shortest output of _steadytext_structured_regex, for the
-- callers that need no more.
CREATE OR REPLACE FUNCTION _steadytext_structured_regex_error(
    pattern text, json_string boolean DEFAULT false,
    OUT sqlstate text, OUT pos integer, OUT what text, OUT min_bytes integer)
RETURNS record
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.sqlstate, r.pos, r.what, r.min_bytes FROM @extschema@._steadytext_structured_regex(pattern, json_string) AS r
$$;

-- pattern: a regex in the dialect above. NULL -> 22004; empty -> 22023;
-- longer than max_pattern_bytes -> 54000; otherwise the dialect's verdict,
-- naming the character position.
CREATE OR REPLACE FUNCTION _steadytext_check_pattern(fn text, pattern text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_bytes bigint := @extschema@._steadytext_limit('max_pattern_bytes');
    err record;
BEGIN
    IF pattern IS NULL THEN
        RAISE EXCEPTION '%: pattern must not be NULL or empty', fn USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pattern = '' THEN
        RAISE EXCEPTION '%: pattern must not be NULL or empty', fn USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF octet_length(pattern) > max_bytes THEN
        RAISE EXCEPTION '%: pattern is % bytes, over the limit of % bytes', fn, octet_length(pattern), max_bytes
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'The limit is steadytext.max_pattern_bytes (see steadytext_limits()).';
    END IF;
    err := @extschema@._steadytext_structured_regex_error(pattern);
    IF err.sqlstate = '0A000' THEN
        RAISE EXCEPTION '%: pattern uses %, at character %, which a grammar cannot express', fn, err.what, err.pos
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Supported: literals, \d \w \s \D \W \S \n \t \r \f \v \uHHHH, escaped punctuation, [...] classes, ., (...), (?:...), |, * + ? {n} {n,} {,m} {n,m}, ^ at the start and $ at the end.';
    ELSIF err.sqlstate = '22023' THEN
        RAISE EXCEPTION '%: pattern is malformed: %, at character %', fn, err.what, err.pos
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF err.sqlstate = '54000' THEN
        RAISE EXCEPTION '%: pattern has %', fn, err.what || coalesce(', at character ' || err.pos, '')
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
END;
$$;

-- Bytes the grammar writes for one character: UTF-8, or inside a JSON
-- string its escape (\" \\ \b \t \n \f \r: 2 bytes, other controls \u00XX: 6).
CREATE OR REPLACE FUNCTION _steadytext_structured_char_bytes(cp integer, json_string boolean)
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN json_string AND cp IN (34, 92, 8, 9, 10, 12, 13) THEN 2
        WHEN json_string AND cp < 32 THEN 6
        WHEN cp < 128 THEN 1 WHEN cp < 2048 THEN 2 WHEN cp < 65536 THEN 3 ELSE 4 END
$$;

-- max_tokens must leave room for the pattern's shortest output: the engine
-- bounds every output to max_tokens bytes (each token is at least one byte),
-- so a pattern needing more could never complete. 22023 naming both.
CREATE OR REPLACE FUNCTION _steadytext_check_pattern_budget(fn text, pattern text, max_tokens integer)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    need integer := (@extschema@._steadytext_structured_regex_error(pattern)).min_bytes;
BEGIN
    IF need > max_tokens THEN
        RAISE EXCEPTION '%: max_tokens (%) is too small for pattern: its shortest match is % bytes', fn, max_tokens, need
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Output is bounded to max_tokens bytes; raise max_tokens.';
    END IF;
END;
$$;

-- The JSON Schema contract: what the engine's grammar can guarantee
-- (src/engine/jsonSchemaGrammar.ts checkSchema walks the same way with the
-- same rules; test/structured/schemaCorpus.test.ts proves both agree).
-- Breadth first, keys in jsonb order, no recursion. Returns NULLs for a
-- schema the engine compiles, else (sqlstate, keyword, path, what):
--   0A000 a keyword or combination the grammar cannot guarantee
--         ($ref, not, multipleOf, patternProperties, if/then/else, ...)
--   22023 a malformed or unsatisfiable keyword value
--   (a bad `pattern` gives the regex dialect's own SQLSTATE)
--   54000 (keyword '', path 'schema') a schema whose grammar's sampler work per
--         character is above 10000 (_steadytext_structured_schema_work)
CREATE OR REPLACE FUNCTION _steadytext_structured_schema_error(
    schema jsonb, OUT sqlstate text, OUT keyword text, OUT path text, OUT what text)
RETURNS record
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    type_names constant text[] := ARRAY['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'];
    unsupported constant text[] := ARRAY['$ref', '$dynamicRef', '$recursiveRef', 'not', 'multipleOf',
        'patternProperties', 'propertyNames', 'dependentRequired', 'dependentSchemas', 'dependencies', 'if',
        'then', 'else', 'contains', 'minContains', 'maxContains', 'unevaluatedProperties', 'unevaluatedItems',
        'additionalItems'];
    keywords constant text[] := ARRAY['type', 'enum', 'const', 'properties', 'required', 'additionalProperties',
        'minProperties', 'maxProperties', 'items', 'prefixItems', 'minItems', 'maxItems', 'uniqueItems',
        'minLength', 'maxLength', 'pattern', 'format', 'minimum', 'maximum', 'exclusiveMinimum',
        'exclusiveMaximum', 'anyOf', 'oneOf', 'allOf'];
    formats constant text[] := ARRAY['date', 'time', 'date-time', 'uuid', 'email', 'ipv4', 'hostname'];
    max_int constant numeric := 999999999999999;
    nodes jsonb[];
    paths text[];
    head integer := 1;
    s jsonb;
    p text;
    m jsonb;
    k text;
    v jsonb;
    part jsonb;
    pk text;
    types text[];
    seen text[];
    fam text;
    validating text[];
    rx record;
    lo numeric;
    hi numeric;
    n_props integer;
    n_extra integer;
    n_required integer;
    extra_name text;
    req jsonb;
    work bigint;
BEGIN
    IF schema = 'true'::jsonb THEN RETURN; END IF;
    IF jsonb_typeof(schema) <> 'object' THEN
        sqlstate := '22023'; keyword := ''; path := 'schema';
        what := format('must be a JSON object (or true), got %s', jsonb_typeof(schema)); RETURN;
    END IF;
    nodes := ARRAY[schema];
    paths := ARRAY['schema'];
    WHILE head <= cardinality(nodes) LOOP
        s := nodes[head];
        p := paths[head];
        head := head + 1;
        path := p;
        CONTINUE WHEN s = 'true'::jsonb;
        IF s = 'false'::jsonb THEN
            sqlstate := '0A000'; keyword := 'false'; what := '(a schema nothing validates)'; RETURN;
        END IF;
        IF jsonb_typeof(s) <> 'object' THEN
            sqlstate := '22023'; keyword := ''; what := 'must be a schema object or boolean'; RETURN;
        END IF;

        FOR k IN SELECT jsonb_object_keys(s) LOOP
            IF k = ANY (unsupported) THEN
                sqlstate := '0A000'; keyword := k; what := 'is not supported'; RETURN;
            END IF;
        END LOOP;

        -- values
        sqlstate := '22023';
        IF s ? 'type' AND NOT (
                (jsonb_typeof(s -> 'type') = 'string' AND (s ->> 'type') = ANY (type_names))
                OR (jsonb_typeof(s -> 'type') = 'array' AND jsonb_array_length(s -> 'type') > 0 AND NOT EXISTS (
                        SELECT 1 FROM jsonb_array_elements(s -> 'type') AS e
                        WHERE jsonb_typeof(e) <> 'string' OR NOT ((e #>> '{}') = ANY (type_names))))) THEN
            keyword := 'type'; what := format('must be one of %s (or an array of them)', array_to_string(type_names, ', ')); RETURN;
        END IF;
        IF s ? 'enum' AND NOT (jsonb_typeof(s -> 'enum') = 'array' AND jsonb_array_length(s -> 'enum') > 0) THEN
            keyword := 'enum'; what := 'must be a non-empty array'; RETURN;
        END IF;
        IF s ? 'properties' AND jsonb_typeof(s -> 'properties') <> 'object' THEN
            keyword := 'properties'; what := 'must be an object of schemas'; RETURN;
        END IF;
        IF s ? 'required' AND (jsonb_typeof(s -> 'required') <> 'array' OR EXISTS (
                SELECT 1 FROM jsonb_array_elements(s -> 'required') AS e WHERE jsonb_typeof(e) <> 'string')) THEN
            keyword := 'required'; what := 'must be an array of strings'; RETURN;
        END IF;
        IF s ? 'additionalProperties' AND jsonb_typeof(s -> 'additionalProperties') NOT IN ('boolean', 'object') THEN
            keyword := 'additionalProperties'; what := 'must be a boolean or a schema'; RETURN;
        END IF;
        FOREACH k IN ARRAY ARRAY['minProperties', 'maxProperties'] LOOP
            IF s ? k AND NOT @extschema@._steadytext_structured_is_count(s -> k) THEN
                keyword := k; what := 'must be a non-negative integer'; RETURN;
            END IF;
        END LOOP;
        IF s ? 'items' THEN
            IF jsonb_typeof(s -> 'items') = 'array' THEN
                sqlstate := '0A000'; keyword := 'items'; what := 'as an array (tuple form) is not supported; use prefixItems'; RETURN;
            END IF;
            IF jsonb_typeof(s -> 'items') NOT IN ('boolean', 'object') THEN
                keyword := 'items'; what := 'must be a schema'; RETURN;
            END IF;
        END IF;
        IF s ? 'prefixItems' AND jsonb_typeof(s -> 'prefixItems') <> 'array' THEN
            keyword := 'prefixItems'; what := 'must be an array of schemas'; RETURN;
        END IF;
        FOREACH k IN ARRAY ARRAY['minItems', 'maxItems'] LOOP
            IF s ? k AND NOT @extschema@._steadytext_structured_is_count(s -> k) THEN
                keyword := k; what := 'must be a non-negative integer'; RETURN;
            END IF;
        END LOOP;
        IF s ? 'uniqueItems' AND jsonb_typeof(s -> 'uniqueItems') <> 'boolean' THEN
            keyword := 'uniqueItems'; what := 'must be a boolean'; RETURN;
        END IF;
        FOREACH k IN ARRAY ARRAY['minLength', 'maxLength'] LOOP
            IF s ? k AND NOT @extschema@._steadytext_structured_is_count(s -> k) THEN
                keyword := k; what := 'must be a non-negative integer'; RETURN;
            END IF;
        END LOOP;
        IF s ? 'pattern' THEN
            IF jsonb_typeof(s -> 'pattern') <> 'string' THEN
                keyword := 'pattern'; what := 'must be a string'; RETURN;
            END IF;
            rx := @extschema@._steadytext_structured_regex_error(s ->> 'pattern');
            IF rx.sqlstate IS NOT NULL THEN
                sqlstate := rx.sqlstate; keyword := 'pattern';
                what := rx.what || coalesce(', at character ' || rx.pos, ''); RETURN;
            END IF;
        END IF;
        IF s ? 'format' THEN
            IF jsonb_typeof(s -> 'format') <> 'string' THEN
                keyword := 'format'; what := 'must be a string'; RETURN;
            END IF;
            IF NOT (s ->> 'format') = ANY (formats) THEN
                sqlstate := '0A000'; keyword := 'format';
                what := format('''%s'' is not supported (supported: %s)', s ->> 'format', array_to_string(formats, ', ')); RETURN;
            END IF;
        END IF;
        FOREACH k IN ARRAY ARRAY['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'] LOOP
            IF s ? k AND jsonb_typeof(s -> k) <> 'number' THEN
                keyword := k; what := 'must be a number'; RETURN;
            END IF;
        END LOOP;
        FOREACH k IN ARRAY ARRAY['anyOf', 'oneOf', 'allOf'] LOOP
            IF s ? k AND NOT (jsonb_typeof(s -> k) = 'array' AND jsonb_array_length(s -> k) > 0) THEN
                keyword := k; what := 'must be a non-empty array of schemas'; RETURN;
            END IF;
        END LOOP;

        -- combinations
        SELECT coalesce(array_agg(x), '{}') INTO validating FROM jsonb_object_keys(s) AS x WHERE x = ANY (keywords);
        IF s ? 'enum' OR s ? 'const' THEN
            keyword := CASE WHEN s ? 'const' THEN 'const' ELSE 'enum' END;
            IF EXISTS (SELECT 1 FROM unnest(validating) AS x WHERE x NOT IN ('type', 'enum', 'const'))
               OR (s ? 'enum' AND s ? 'const') THEN
                sqlstate := '0A000'; what := 'combines only with type'; RETURN;
            END IF;
            IF s ? 'type' THEN
                types := @extschema@._steadytext_structured_types(s);
                IF EXISTS (
                    SELECT 1 FROM jsonb_array_elements(CASE WHEN s ? 'const' THEN jsonb_build_array(s -> 'const') ELSE s -> 'enum' END) AS e
                    WHERE NOT (@extschema@._steadytext_structured_type_of(e) = ANY (types)
                               OR (@extschema@._steadytext_structured_type_of(e) = 'integer' AND 'number' = ANY (types)))) THEN
                    what := format('holds a value that is not of type %s', array_to_string(types, ' or ')); RETURN;
                END IF;
            END IF;
        END IF;
        FOREACH k IN ARRAY ARRAY['anyOf', 'oneOf'] LOOP
            CONTINUE WHEN NOT s ? k;
            IF EXISTS (SELECT 1 FROM unnest(validating) AS x WHERE x <> k) THEN
                sqlstate := '0A000'; keyword := k; what := 'combines with no other validation keyword'; RETURN;
            END IF;
            IF k = 'oneOf' THEN
                seen := '{}';
                FOR part IN SELECT e FROM jsonb_array_elements(s -> 'oneOf') AS e LOOP
                    IF jsonb_typeof(part) <> 'object' OR NOT part ? 'type' THEN
                        sqlstate := '0A000'; keyword := 'oneOf'; what := 'needs a type on every branch'; RETURN;
                    END IF;
                    types := @extschema@._steadytext_structured_types(part);
                    FOREACH fam IN ARRAY types LOOP
                        IF (CASE WHEN fam = 'integer' THEN 'number' ELSE fam END) = ANY (seen) THEN
                            sqlstate := '0A000'; keyword := 'oneOf';
                            what := 'branches must have disjoint types (so exactly one matches)'; RETURN;
                        END IF;
                    END LOOP;
                    FOREACH fam IN ARRAY types LOOP
                        seen := seen || (CASE WHEN fam = 'integer' THEN 'number' ELSE fam END);
                    END LOOP;
                END LOOP;
            END IF;
        END LOOP;
        m := s;
        IF s ? 'allOf' THEN
            IF s ? 'additionalProperties' THEN
                sqlstate := '0A000'; keyword := 'allOf'; what := 'beside additionalProperties is not supported'; RETURN;
            END IF;
            m := s - 'allOf';
            req := coalesce(CASE WHEN jsonb_typeof(s -> 'required') = 'array' THEN s -> 'required' END, '[]');
            FOR part IN SELECT e FROM jsonb_array_elements(s -> 'allOf') AS e LOOP
                CONTINUE WHEN jsonb_typeof(part) <> 'object';
                FOR k, v IN SELECT e.key, e.value FROM jsonb_each(part) AS e LOOP
                    IF k IN ('allOf', 'anyOf', 'oneOf', 'additionalProperties') THEN
                        sqlstate := '0A000'; keyword := 'allOf'; what := format('parts with %s do not merge', k); RETURN;
                    END IF;
                    IF k = 'required' THEN
                        IF jsonb_typeof(v) = 'array' THEN req := req || v; END IF;
                        CONTINUE;
                    END IF;
                    IF k = 'properties' AND jsonb_typeof(v) = 'object' AND jsonb_typeof(m -> 'properties') = 'object' THEN
                        FOR pk IN SELECT jsonb_object_keys(v) LOOP
                            IF (m -> 'properties') ? pk AND (m -> 'properties' -> pk) <> (v -> pk) THEN
                                sqlstate := '0A000'; keyword := 'allOf';
                                what := format('parts give property ''%s'' different schemas', pk); RETURN;
                            END IF;
                        END LOOP;
                        m := jsonb_set(m, '{properties}', (m -> 'properties') || v);
                        CONTINUE;
                    END IF;
                    IF m ? k AND (m -> k) <> v THEN
                        sqlstate := '0A000'; keyword := 'allOf'; what := format('parts give ''%s'' different values', k); RETURN;
                    END IF;
                    m := m || jsonb_build_object(k, v);
                END LOOP;
            END LOOP;
            IF jsonb_array_length(req) > 0 THEN
                m := m || jsonb_build_object('required', req);
            END IF;
            IF (m ? 'enum' OR m ? 'const') AND EXISTS (
                    SELECT 1 FROM jsonb_object_keys(m) AS x WHERE x = ANY (keywords) AND x NOT IN ('type', 'enum', 'const')) THEN
                sqlstate := '0A000'; keyword := 'allOf'; what := 'merges enum or const with other keywords'; RETURN;
            END IF;
        END IF;
        sqlstate := '22023';
        IF m ? 'minLength' AND m ? 'maxLength' AND @extschema@._steadytext_structured_num(m -> 'minLength') > @extschema@._steadytext_structured_num(m -> 'maxLength') THEN
            keyword := 'maxLength'; what := 'is below minLength'; RETURN;
        END IF;
        IF m ? 'minItems' AND m ? 'maxItems' AND @extschema@._steadytext_structured_num(m -> 'minItems') > @extschema@._steadytext_structured_num(m -> 'maxItems') THEN
            keyword := 'maxItems'; what := 'is below minItems'; RETURN;
        END IF;
        IF m ? 'minProperties' AND m ? 'maxProperties' AND @extschema@._steadytext_structured_num(m -> 'minProperties') > @extschema@._steadytext_structured_num(m -> 'maxProperties') THEN
            keyword := 'maxProperties'; what := 'is below minProperties'; RETURN;
        END IF;
        IF m ? 'pattern' OR m ? 'format' THEN
            IF (m ? 'pattern' AND m ? 'format') OR m ? 'minLength' OR m ? 'maxLength' THEN
                sqlstate := '0A000'; keyword := CASE WHEN m ? 'pattern' THEN 'pattern' ELSE 'format' END;
                what := 'combines with no other string keyword'; RETURN;
            END IF;
        END IF;
        IF m ?| ARRAY['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'] THEN
            lo := NULL; hi := NULL;
            IF m ? 'minimum' THEN lo := ceil(@extschema@._steadytext_structured_num(m -> 'minimum')); END IF;
            IF m ? 'exclusiveMinimum' THEN lo := greatest(lo, floor(@extschema@._steadytext_structured_num(m -> 'exclusiveMinimum')) + 1); END IF;
            IF m ? 'maximum' THEN hi := floor(@extschema@._steadytext_structured_num(m -> 'maximum')); END IF;
            IF m ? 'exclusiveMaximum' THEN hi := least(hi, ceil(@extschema@._steadytext_structured_num(m -> 'exclusiveMaximum')) - 1); END IF;
            IF lo > hi THEN
                sqlstate := '0A000';
                keyword := CASE WHEN m ? 'maximum' THEN 'maximum' WHEN m ? 'exclusiveMaximum' THEN 'exclusiveMaximum' ELSE 'minimum' END;
                what := 'leaves no integer between the bounds (bounded numbers are written as integers)'; RETURN;
            END IF;
            IF lo > max_int OR hi < -max_int THEN
                sqlstate := '0A000';
                keyword := CASE WHEN m ? 'minimum' THEN 'minimum' WHEN m ? 'exclusiveMinimum' THEN 'exclusiveMinimum' ELSE 'maximum' END;
                what := format('bounds beyond ±%s', max_int); RETURN;
            END IF;
        END IF;
        SELECT count(*) INTO n_props FROM jsonb_object_keys(CASE WHEN jsonb_typeof(m -> 'properties') = 'object' THEN m -> 'properties' ELSE '{}' END);
        SELECT count(DISTINCT r), count(DISTINCT r) FILTER (WHERE NOT coalesce(m -> 'properties' ? r, false))
          INTO n_required, n_extra
          FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(m -> 'required') = 'array' THEN m -> 'required' ELSE '[]' END) AS r;
        IF n_extra > 0 AND m -> 'additionalProperties' = 'false'::jsonb THEN
            SELECT r INTO extra_name
              FROM jsonb_array_elements_text(m -> 'required') WITH ORDINALITY AS t(r, o)
             WHERE NOT coalesce(m -> 'properties' ? r, false) ORDER BY o LIMIT 1;
            keyword := 'required'; what := format('names ''%s'', which additionalProperties: false forbids', extra_name); RETURN;
        END IF;
        IF m ? 'maxProperties' AND @extschema@._steadytext_structured_num(m -> 'maxProperties') < n_required THEN
            keyword := 'maxProperties'; what := 'is below the number of required properties'; RETURN;
        END IF;
        IF m ? 'minProperties' AND @extschema@._steadytext_structured_num(m -> 'minProperties') > n_props + n_extra THEN
            sqlstate := '0A000'; keyword := 'minProperties'; what := 'is above the number of properties the schema names'; RETURN;
        END IF;
        IF jsonb_typeof(m -> 'prefixItems') = 'array' AND @extschema@._steadytext_structured_num(m -> 'minItems') > jsonb_array_length(m -> 'prefixItems') THEN
            sqlstate := '0A000'; keyword := 'prefixItems'; what := 'with minItems above its length is not supported'; RETURN;
        END IF;
        IF m -> 'uniqueItems' = 'true'::jsonb AND NOT coalesce(@extschema@._steadytext_structured_num(m -> 'maxItems') <= 1, false) THEN
            sqlstate := '0A000'; keyword := 'uniqueItems'; what := 'is supported only with maxItems <= 1'; RETURN;
        END IF;
        IF m -> 'items' = 'false'::jsonb AND NOT m ? 'prefixItems' AND m ? 'minItems' AND @extschema@._steadytext_structured_num(m -> 'minItems') > 0 THEN
            keyword := 'items'; what := 'is false, so minItems cannot be met'; RETURN;
        END IF;
        sqlstate := NULL; keyword := NULL; what := NULL;

        -- children, keys in jsonb order
        FOR k, v IN SELECT e.key, e.value FROM jsonb_each(s) AS e LOOP
            IF k = 'properties' THEN
                FOR pk, part IN SELECT e.key, e.value FROM jsonb_each(v) AS e LOOP
                    nodes := nodes || part; paths := paths || (p || '.properties.' || pk);
                END LOOP;
            ELSIF k IN ('additionalProperties', 'items') AND jsonb_typeof(v) = 'object' THEN
                nodes := nodes || v; paths := paths || (p || '.' || k);
            ELSIF k IN ('prefixItems', 'anyOf', 'oneOf', 'allOf') THEN
                FOR part, pk IN SELECT e.value, (e.ord - 1)::text FROM jsonb_array_elements(v) WITH ORDINALITY AS e(value, ord) LOOP
                    nodes := nodes || part; paths := paths || format('%s.%s[%s]', p, k, pk);
                END LOOP;
            END IF;
        END LOOP;
    END LOOP;
    path := NULL;
    -- The schema is in the contract; its grammar must also be cheap to sample.
    work := @extschema@._steadytext_structured_schema_work(schema);
    IF work > 10000 THEN  -- the engine's MAX_GRAMMAR_WORK, as in _steadytext_structured_regex
        sqlstate := '54000'; keyword := ''; path := 'schema';
        what := format('makes a grammar whose sampler work per character is %s, over the limit of 10000 (alternatives '
                       'that can match the same characters, anyOf branches, type lists and enum values, add up, and '
                       'multiply when nested: make branches start differently, or nest fewer of them)', work);
    END IF;
END;
$$;

-- A jsonb number as numeric; NULL for anything else.
CREATE OR REPLACE FUNCTION _steadytext_structured_num(v jsonb)
RETURNS numeric
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'number' THEN (v #>> '{}')::numeric END
$$;

CREATE OR REPLACE FUNCTION _steadytext_structured_is_count(v jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_typeof(v) = 'number' AND (v #>> '{}')::numeric >= 0
           AND (v #>> '{}')::numeric = trunc((v #>> '{}')::numeric)
$$;

CREATE OR REPLACE FUNCTION _steadytext_structured_types(s jsonb)
RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE jsonb_typeof(s -> 'type')
        WHEN 'string' THEN ARRAY[s ->> 'type']
        ELSE ARRAY(SELECT jsonb_array_elements_text(s -> 'type')) END
$$;

-- JSON type of a value, with integral numbers as 'integer'.
CREATE OR REPLACE FUNCTION _steadytext_structured_type_of(v jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'number' AND (v #>> '{}')::numeric = trunc((v #>> '{}')::numeric)
                THEN 'integer' ELSE jsonb_typeof(v) END
$$;

-- schema: a JSON Schema object (or true) the engine turns into a grammar.
-- NULL -> 22004; bigger than max_schema_bytes or nesting (data included)
-- deeper than max_schema_depth -> 54000 (one iterative pass, no recursion);
-- then the contract above, naming the path and keyword.
CREATE OR REPLACE FUNCTION _steadytext_check_schema(fn text, schema jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_bytes bigint := @extschema@._steadytext_limit('max_schema_bytes');
    max_depth bigint := @extschema@._steadytext_limit('max_schema_depth');
    level jsonb[];
    depth integer := 1;
    bytes integer;
    err record;
BEGIN
    IF schema IS NULL THEN
        RAISE EXCEPTION '%: schema must not be NULL', fn USING ERRCODE = 'null_value_not_allowed';
    END IF;
    bytes := octet_length(schema::text);
    IF bytes > max_bytes THEN
        RAISE EXCEPTION '%: schema is % bytes, over the limit of % bytes', fn, bytes, max_bytes
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'The limit is steadytext.max_schema_bytes (see steadytext_limits()).';
    END IF;
    IF schema <> 'true'::jsonb AND jsonb_typeof(schema) <> 'object' THEN
        RAISE EXCEPTION '%: schema must be a JSON object (or true), got %', fn, jsonb_typeof(schema)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- depth, level by level
    level := ARRAY[schema];
    WHILE cardinality(level) > 0 LOOP
        IF depth > max_depth THEN
            RAISE EXCEPTION '%: schema nests deeper than % levels', fn, max_depth
                USING ERRCODE = 'program_limit_exceeded',
                      HINT = 'The limit is steadytext.max_schema_depth (see steadytext_limits()).';
        END IF;
        SELECT coalesce(array_agg(c), '{}') INTO level
          FROM unnest(level) AS n,
               LATERAL (SELECT value FROM jsonb_each(CASE WHEN jsonb_typeof(n) = 'object' THEN n END)
                        UNION ALL
                        SELECT value FROM jsonb_array_elements(CASE WHEN jsonb_typeof(n) = 'array' THEN n END)) AS x(c)
         WHERE jsonb_typeof(c) IN ('object', 'array');
        depth := depth + 1;
    END LOOP;

    err := @extschema@._steadytext_structured_schema_error(schema);
    IF err.sqlstate = '0A000' THEN
        RAISE EXCEPTION '%: schema: %.% %', fn, err.path, err.keyword, err.what
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'See "JSON schemas" in docs/limits.md for what a grammar can guarantee.';
    ELSIF err.sqlstate = '22023' THEN
        IF err.keyword = '' THEN
            RAISE EXCEPTION '%: schema: % %', fn, err.path, err.what USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RAISE EXCEPTION '%: schema: %.% %', fn, err.path, err.keyword, err.what USING ERRCODE = 'invalid_parameter_value';
    ELSIF err.sqlstate = '54000' THEN
        IF err.keyword = '' THEN
            RAISE EXCEPTION '%: schema: % %', fn, err.path, err.what USING ERRCODE = 'program_limit_exceeded';
        END IF;
        RAISE EXCEPTION '%: schema: %.% %', fn, err.path, err.keyword, err.what USING ERRCODE = 'program_limit_exceeded';
    END IF;
END;
$$;
-- Bytes of JSON.stringify(v): compact JSON as the engine writes it.
CREATE OR REPLACE FUNCTION _steadytext_structured_json_bytes(v jsonb)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text := jsonb_typeof(v);
BEGIN
    IF t = 'string' THEN RETURN octet_length(v::text); END IF;
    IF t = 'number' THEN RETURN octet_length(trim_scale((v #>> '{}')::numeric)::text); END IF;
    IF t = 'boolean' THEN RETURN CASE WHEN v = 'true'::jsonb THEN 4 ELSE 5 END; END IF;
    IF t = 'null' THEN RETURN 4; END IF;
    IF t = 'array' THEN
        RETURN 2 + greatest(jsonb_array_length(v) - 1, 0)
               + coalesce((SELECT sum(@extschema@._steadytext_structured_json_bytes(e)) FROM jsonb_array_elements(v) AS e), 0);
    END IF;
    RETURN 2 + greatest((SELECT count(*) FROM jsonb_object_keys(v)) - 1, 0)
           + coalesce((SELECT sum(octet_length(to_json(e.key)::text) + 1 + @extschema@._steadytext_structured_json_bytes(e.value))
                       FROM jsonb_each(v) AS e), 0);
END;
$$;

-- allOf folded into one schema, as the engine's mergeAllOf does.
CREATE OR REPLACE FUNCTION _steadytext_structured_merge(s jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m jsonb;
    part jsonb;
    k text;
    v jsonb;
    req jsonb;
BEGIN
    IF jsonb_typeof(s) <> 'object' OR jsonb_typeof(s -> 'allOf') <> 'array' THEN RETURN s; END IF;
    m := s - 'allOf';
    req := CASE WHEN jsonb_typeof(m -> 'required') = 'array' THEN m -> 'required' ELSE '[]' END;
    FOR part IN SELECT e FROM jsonb_array_elements(s -> 'allOf') AS e WHERE jsonb_typeof(e) = 'object' LOOP
        FOR k, v IN SELECT e.key, e.value FROM jsonb_each(part) AS e LOOP
            IF k = 'properties' AND jsonb_typeof(v) = 'object' THEN
                m := m || jsonb_build_object('properties',
                    CASE WHEN jsonb_typeof(m -> 'properties') = 'object' THEN m -> 'properties' ELSE '{}' END || v);
            ELSIF k = 'required' AND jsonb_typeof(v) = 'array' THEN
                req := req || v;
            ELSE
                m := m || jsonb_build_object(k, v);
            END IF;
        END LOOP;
    END LOOP;
    IF jsonb_array_length(req) > 0 THEN m := m || jsonb_build_object('required', req); END IF;
    RETURN m;
END;
$$;

-- The regex each supported `format` is generated from (the engine's FORMATS).
CREATE OR REPLACE FUNCTION _steadytext_structured_format_regex(format text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH f(name, rx) AS (VALUES
        ('date', '\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)|02-(?:0[1-9]|1\d|2[0-8]))'),
        ('time', '(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)'),
        ('uuid', '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'),
        ('email', '[a-z0-9_+-]{1,32}(?:\.[a-z0-9_+-]{1,32}){0,2}@[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?){0,2}\.[a-z]{2,6}'),
        ('ipv4', '(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}'),
        ('hostname', '[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?){0,3}'))
    SELECT CASE WHEN format = 'date-time'
                THEN (SELECT rx FROM f WHERE name = 'date') || 'T' || (SELECT rx FROM f WHERE name = 'time')
                ELSE (SELECT rx FROM f WHERE name = format) END
$$;

-- Bytes of the shortest document the engine writes for a schema that passed
-- _steadytext_structured_schema_error (the engine's minLen; recursion is
-- bounded by max_schema_depth).
CREATE OR REPLACE FUNCTION _steadytext_structured_min_bytes(s0 jsonb)
RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_int constant numeric := 999999999999999;
    s jsonb;
    types text[];
    t text;
    best numeric;
    len numeric;
    lo numeric;
    hi numeric;
    req text[];
    keep integer;
    n integer;
BEGIN
    IF s0 = 'true'::jsonb THEN RETURN 1; END IF;
    s := @extschema@._steadytext_structured_merge(s0);
    IF s ? 'const' THEN RETURN @extschema@._steadytext_structured_json_bytes(s -> 'const'); END IF;
    IF jsonb_typeof(s -> 'enum') = 'array' THEN
        RETURN (SELECT min(@extschema@._steadytext_structured_json_bytes(e)) FROM jsonb_array_elements(s -> 'enum') AS e);
    END IF;
    IF s ? 'anyOf' OR s ? 'oneOf' THEN
        RETURN (SELECT min(@extschema@._steadytext_structured_min_bytes(e))
                FROM jsonb_array_elements(coalesce(s -> 'anyOf', s -> 'oneOf')) AS e);
    END IF;
    IF s ? 'type' THEN
        types := @extschema@._steadytext_structured_types(s);
    ELSIF s ? 'properties' OR s ? 'required' OR s ? 'minProperties' THEN
        types := ARRAY['object'];
    ELSIF (s ? 'items' AND s -> 'items' <> 'false'::jsonb) OR s ? 'prefixItems' THEN
        types := ARRAY['array'];
    ELSE
        types := ARRAY['string', 'number', 'boolean', 'null'];
    END IF;
    FOREACH t IN ARRAY types LOOP
        IF t = 'string' THEN
            IF s ? 'pattern' THEN
                len := 2 + (@extschema@._steadytext_structured_regex_error(s ->> 'pattern', true)).min_bytes;
            ELSIF s ? 'format' THEN
                len := 2 + (@extschema@._steadytext_structured_regex_error(
                                @extschema@._steadytext_structured_format_regex(s ->> 'format'), true)).min_bytes;
            ELSE
                len := 2 + coalesce(@extschema@._steadytext_structured_num(s -> 'minLength'), 0);
            END IF;
        ELSIF t IN ('number', 'integer') THEN
            lo := ceil(@extschema@._steadytext_structured_num(s -> 'minimum'));
            lo := greatest(lo, floor(@extschema@._steadytext_structured_num(s -> 'exclusiveMinimum')) + 1);
            hi := floor(@extschema@._steadytext_structured_num(s -> 'maximum'));
            hi := least(hi, ceil(@extschema@._steadytext_structured_num(s -> 'exclusiveMaximum')) - 1);
            lo := coalesce(lo, -max_int);
            hi := coalesce(hi, max_int);
            len := CASE WHEN lo <= 0 AND hi >= 0 THEN 1
                        WHEN lo > 0 THEN length(lo::text)
                        ELSE 1 + length((-hi)::text) END;
        ELSIF t IN ('boolean', 'null') THEN
            len := 4;
        ELSIF t = 'object' THEN
            -- every property, required names outside properties too (any value: 1 byte);
            -- under maxProperties the required ones, then optional ones in order
            req := CASE WHEN jsonb_typeof(s -> 'required') = 'array'
                        THEN ARRAY(SELECT jsonb_array_elements_text(s -> 'required')) ELSE '{}' END;
            WITH props AS (
                SELECT p.key, @extschema@._steadytext_structured_min_bytes(p.value) AS mb, p.ord
                  FROM jsonb_each(CASE WHEN jsonb_typeof(s -> 'properties') = 'object' THEN s -> 'properties' ELSE '{}' END)
                       WITH ORDINALITY AS p(key, value, ord)
                UNION ALL
                SELECT r.key, 1, 1000000 + min(r.ord)
                  FROM unnest(req) WITH ORDINALITY AS r(key, ord)
                 WHERE NOT coalesce((s -> 'properties') ? r.key, false)
                 GROUP BY r.key
            ), ranked AS (
                SELECT key, mb, key = ANY (req) AS required,
                       row_number() OVER (PARTITION BY key = ANY (req) ORDER BY ord) AS rn
                  FROM props
            ), kept AS (
                SELECT * FROM ranked
                 WHERE required OR rn <= coalesce(@extschema@._steadytext_structured_num(s -> 'maxProperties'), 1e9)
                                          - (SELECT count(*) FROM ranked WHERE required)
            )
            SELECT 2 + coalesce(sum(octet_length(to_json(key)::text) + 1 + mb), 0) + greatest(count(*) - 1, 0)
              INTO len FROM kept;
        ELSE
            IF jsonb_typeof(s -> 'prefixItems') = 'array' THEN
                keep := least(jsonb_array_length(s -> 'prefixItems'),
                              coalesce(@extschema@._steadytext_structured_num(s -> 'maxItems'), 1e9)::integer);
                SELECT 2 + coalesce(sum(@extschema@._steadytext_structured_min_bytes(e)), 0) + greatest(count(*) - 1, 0)
                  INTO len FROM jsonb_array_elements(s -> 'prefixItems') WITH ORDINALITY AS x(e, o) WHERE o <= keep;
            ELSIF s -> 'items' = 'false'::jsonb THEN
                len := 2;
            ELSE
                n := coalesce(@extschema@._steadytext_structured_num(s -> 'minItems'), 0);
                len := 2 + n * (CASE WHEN n = 0 THEN 0 ELSE @extschema@._steadytext_structured_min_bytes(coalesce(s -> 'items', 'true')) END)
                       + greatest(n - 1, 0);
            END IF;
        END IF;
        best := least(best, len);
    END LOOP;
    RETURN best;
END;
$$;

-- The sampler work per character of a schema that passed
-- _steadytext_structured_schema_error's walk: the engine's schemaWork
-- (src/engine/jsonSchemaGrammar.ts explains the bound and its constants):
-- alternatives add up, members of an object or array take the most
-- expensive one, leaves are a string (5 * 6^2 + 7^2), a number (3 * 9^2), n
-- literals (25n + 7^2) or a pattern's work. Recursion is bounded by
-- max_schema_depth.
CREATE OR REPLACE FUNCTION _steadytext_structured_schema_work(s0 jsonb)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    string_work constant bigint := 5 * 6 * 6 + 7 * 7;
    number_work constant bigint := 3 * 9 * 9;
    s jsonb;
    types text[];
    t text;
    part bigint;
    total bigint := 0;
BEGIN
    IF s0 = 'true'::jsonb THEN RETURN @extschema@._steadytext_structured_schema_work('{}'); END IF;
    s := @extschema@._steadytext_structured_merge(s0);
    IF s ? 'const' THEN RETURN 25 + 7 * 7; END IF;
    IF jsonb_typeof(s -> 'enum') = 'array' THEN RETURN 25 * jsonb_array_length(s -> 'enum') + 7 * 7; END IF;
    IF s ? 'anyOf' OR s ? 'oneOf' THEN
        RETURN (SELECT coalesce(sum(@extschema@._steadytext_structured_schema_work(e)), 0)
                FROM jsonb_array_elements(coalesce(s -> 'anyOf', s -> 'oneOf')) AS e);
    END IF;
    IF s ? 'type' THEN
        types := @extschema@._steadytext_structured_types(s);
    ELSIF s ? 'properties' OR s ? 'required' OR s ? 'minProperties' THEN
        types := ARRAY['object'];
    ELSIF (s ? 'items' AND s -> 'items' <> 'false'::jsonb) OR s ? 'prefixItems' THEN
        types := ARRAY['array'];
    ELSE
        types := ARRAY['string', 'number', 'boolean', 'null'];
    END IF;
    FOREACH t IN ARRAY types LOOP
        IF t = 'string' THEN
            part := CASE WHEN s ? 'pattern' THEN (@extschema@._steadytext_structured_regex(s ->> 'pattern')).work
                         WHEN s ? 'format' THEN (@extschema@._steadytext_structured_regex(
                                                     @extschema@._steadytext_structured_format_regex(s ->> 'format'))).work
                         ELSE string_work END;
        ELSIF t IN ('number', 'integer') THEN
            part := number_work;
        ELSIF t = 'boolean' THEN
            part := 25 * 2 + 7 * 7;
        ELSIF t = 'null' THEN
            part := 25 + 7 * 7;
        ELSIF t = 'object' THEN
            SELECT greatest(25 + 7 * 7, max(@extschema@._steadytext_structured_schema_work(p.value))) INTO part
              FROM jsonb_each(CASE WHEN jsonb_typeof(s -> 'properties') = 'object' THEN s -> 'properties' ELSE '{}' END) AS p;
            IF jsonb_typeof(s -> 'required') = 'array' AND EXISTS (
                    SELECT 1 FROM jsonb_array_elements_text(s -> 'required') AS r
                     WHERE NOT coalesce((s -> 'properties') ? r, false)) THEN
                part := greatest(part, @extschema@._steadytext_structured_schema_work('true'));
            END IF;
        ELSIF jsonb_typeof(s -> 'prefixItems') = 'array' THEN
            SELECT greatest(25 + 7 * 7, max(@extschema@._steadytext_structured_schema_work(e))) INTO part
              FROM jsonb_array_elements(s -> 'prefixItems') AS e;
        ELSIF s -> 'items' = 'false'::jsonb THEN
            part := 25 + 7 * 7;
        ELSE
            part := greatest(25 + 7 * 7, @extschema@._steadytext_structured_schema_work(coalesce(s -> 'items', 'true')));
        END IF;
        total := total + part;
    END LOOP;
    RETURN total;
END;
$$;

-- max_tokens must leave room for the schema's smallest document (output is
-- bounded to max_tokens bytes). 22023 naming both.
CREATE OR REPLACE FUNCTION _steadytext_check_schema_budget(fn text, schema jsonb, max_tokens integer)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    need numeric := @extschema@._steadytext_structured_min_bytes(schema);
BEGIN
    IF need > max_tokens THEN
        RAISE EXCEPTION '%: max_tokens (%) is too small for schema: its smallest document is % bytes', fn, max_tokens, need
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'JSON output is bounded to max_tokens bytes; raise max_tokens.';
    END IF;
END;
$$;

-- ---------------------------------------------------------------------------
-- sql/src/28-identity.sql
-- ---------------------------------------------------------------------------
-- Model ids and the caller identity used by SECURITY DEFINER helpers.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- Model id per role ('generation', 'embedding', 'reranking') as the workers
-- published it in steadytext_config ('model.<role>'); 'default-<role>' before
-- any worker started.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_model_id(role text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (SELECT c.value #>> '{}' FROM @extschema@.steadytext_config AS c WHERE c.key = 'model.' || role),
        'default-' || role)
$$;

-- The role a SECURITY DEFINER helper acts for. Inside such a helper
-- current_user is the extension's owner, so its callers pass their own
-- current_user (the helpers' `caller name DEFAULT current_user` is evaluated
-- in the caller's context, before the helper's). A role named explicitly is
-- accepted only if the session could become it anyway: it is the session
-- user, or the session user may SET ROLE to it (pg_has_role(..., 'SET') on
-- PostgreSQL 16+, where membership alone no longer grants SET ROLE; on 15,
-- where SET ROLE needs exactly membership, 'MEMBER'). Raises 42501 otherwise.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_caller(caller name)
RETURNS name
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ok boolean := false;
BEGIN
    IF caller IS NOT NULL THEN
        IF caller = session_user THEN
            ok := true;
        ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_roles AS r WHERE r.rolname = caller) THEN
            IF current_setting('server_version_num')::integer >= 160000 THEN
                ok := pg_catalog.pg_has_role(session_user, caller, 'SET');
            ELSE
                ok := pg_catalog.pg_has_role(session_user, caller, 'MEMBER');
            END IF;
        END IF;
    END IF;
    IF NOT ok THEN
        RAISE EXCEPTION 'steadytext: session user % cannot act for role %', session_user, coalesce(quote_ident(caller), 'NULL')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN caller;
END;
$$;

-- Whether `who` sees every request (not only those it owns): a superuser, a
-- member of steadytext_admin or steadytext_worker, or of the role owning
-- steadytext_queue. The row-level security policies say the same.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_sees_all(who name)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = who), false)
        OR pg_has_role(who, 'steadytext_admin', 'MEMBER')
        OR pg_has_role(who, 'steadytext_worker', 'MEMBER')
        OR pg_has_role(who, (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = '@extschema@.steadytext_queue'::regclass), 'MEMBER');
END;
$$;

-- What a worker may write in steadytext_config: its engine's model id per
-- role, {"generation": "...", "embedding": "...", "reranking": "..."} (any
-- subset), upserted as 'model.<role>'. Nothing else: a worker can neither
-- read the config (it holds the hand-off's password) nor change any other
-- key. Raises 22023 for another key or a value that is not a non-empty
-- string of at most 512 bytes. SECURITY DEFINER (steadytext_worker and
-- steadytext_admin only).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_publish_model_ids(ids jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad text;
BEGIN
    IF ids IS NULL OR jsonb_typeof(ids) <> 'object' THEN
        RAISE EXCEPTION '_steadytext_publish_model_ids: ids must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT e.key INTO bad FROM jsonb_each(ids) AS e
    WHERE e.key NOT IN ('generation', 'embedding', 'reranking')
       OR jsonb_typeof(e.value) <> 'string' OR (e.value #>> '{}') = '' OR octet_length(e.value #>> '{}') > 512
    ORDER BY e.key LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '_steadytext_publish_model_ids: % is not a model role with a model id (generation, embedding, reranking: a non-empty string)', quote_literal(bad)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO @extschema@.steadytext_config AS c (key, value, updated_at)
    SELECT 'model.' || e.key, e.value, now() FROM jsonb_each(ids) AS e
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
    WHERE c.value IS DISTINCT FROM excluded.value;
END;
$$;

-- ---------------------------------------------------------------------------
-- sql/src/30-cache-keys.sql
-- ---------------------------------------------------------------------------
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
        WHEN 'generate'        THEN ARRAY['prompt', 'max_tokens', 'seed']
        WHEN 'generate_json'   THEN ARRAY['prompt', 'schema', 'max_tokens', 'seed']
        WHEN 'generate_regex'  THEN ARRAY['prompt', 'pattern', 'max_tokens', 'seed']
        WHEN 'generate_choice' THEN ARRAY['prompt', 'choices', 'max_tokens', 'seed']
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

-- ---------------------------------------------------------------------------
-- sql/src/35-worker-liveness.sql
-- ---------------------------------------------------------------------------
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

-- ---------------------------------------------------------------------------
-- sql/src/40-enqueue.sql
-- ---------------------------------------------------------------------------
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
        WHEN 'generate' THEN 'prompt'
        WHEN 'embed'    THEN 'text_input'
    END;
    items_arg constant text := CASE function_name
        -- @job-types batch-arguments
        WHEN 'generate' THEN 'prompts'
        WHEN 'embed'    THEN 'texts'
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

-- ---------------------------------------------------------------------------
-- sql/src/45-triggers.sql
-- ---------------------------------------------------------------------------
-- Queue triggers.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Queue triggers: completed_at bookkeeping and the completion NOTIFY
-- ===========================================================================

-- BEFORE: a row entering a terminal state gets completed_at (now(), unless the
-- statement sets one) and, entering 'failed', failed_at; a row leaving the
-- terminal states (retry) loses completed_at.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_queue_stamp()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.status IN ('completed', 'failed', 'cancelled') THEN
        IF NEW.completed_at IS NULL
           OR (TG_OP = 'UPDATE' AND NEW.completed_at IS NOT DISTINCT FROM OLD.completed_at) THEN
            NEW.completed_at := now();
        END IF;
        IF NEW.status = 'failed' AND NEW.failed_at IS NULL THEN
            NEW.failed_at := NEW.completed_at;
        END IF;
    ELSE
        NEW.completed_at := NULL;
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER steadytext_queue_stamp_insert
    BEFORE INSERT ON @extschema@.steadytext_queue
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed', 'cancelled') OR NEW.completed_at IS NOT NULL)
    EXECUTE FUNCTION @extschema@._steadytext_queue_stamp();

-- Fires only where the function changes something: a row entering a terminal
-- state whose statement left completed_at (or a failure's failed_at) to it,
-- or a row leaving the terminal states that still has a completed_at. The
-- claim (pending -> processing) and the release (processing -> pending) do not
-- call it: every claim and every completion that sets its own completed_at
-- saves a PL/pgSQL call per row.
CREATE OR REPLACE TRIGGER steadytext_queue_stamp_update
    BEFORE UPDATE ON @extschema@.steadytext_queue
    FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status AND (
        CASE WHEN NEW.status IN ('completed', 'failed', 'cancelled')
             THEN NEW.completed_at IS NULL OR NEW.completed_at IS NOT DISTINCT FROM OLD.completed_at
                  OR (NEW.status = 'failed' AND NEW.failed_at IS NULL)
             ELSE NEW.completed_at IS NOT NULL
        END))
    EXECUTE FUNCTION @extschema@._steadytext_queue_stamp();

-- AFTER: exactly one NOTIFY steadytext_completed per terminal transition,
-- payload {"request_id","function","status"[, "batch_id"]} (batch_id only for
-- a batch's rows: json_strip_nulls), sent at commit.
-- Statement-level over the statement's transition tables: one call per
-- INSERT/UPDATE statement, whatever its row count, where a row trigger cost a
-- PL/pgSQL call per row (the worker completes its jobs in groups; a group of
-- 128 made 128 trigger calls). A row counts once: born terminal (INSERT), or
-- entering a terminal state from another (UPDATE, old and new row matched by
-- request_id, which no statement changes).
-- The old and new rows are matched by a hash (or merge) join, never a nested
-- loop (enable_nestloop off): the planner's estimate of a transition table
-- inside a data-modifying WITH is one row, and a nested loop over a
-- completion group of 1,000 rows compared a million pairs.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_queue_notify_completed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_nestloop = off
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('steadytext_completed',
            json_strip_nulls(json_build_object('request_id', n.request_id, 'function', n.function_name,
                                               'status', n.status, 'batch_id', n.batch_id))::text)
        FROM new_rows AS n
        WHERE n.status IN ('completed', 'failed', 'cancelled');
    ELSE
        PERFORM pg_notify('steadytext_completed',
            json_strip_nulls(json_build_object('request_id', n.request_id, 'function', n.function_name,
                                               'status', n.status, 'batch_id', n.batch_id))::text)
        FROM new_rows AS n JOIN old_rows AS o ON o.request_id = n.request_id
        WHERE n.status IN ('completed', 'failed', 'cancelled')
          AND o.status IS DISTINCT FROM n.status;
    END IF;
    RETURN NULL;
END;
$$;

-- (A trigger with transition tables takes one event: one for each.)
CREATE OR REPLACE TRIGGER steadytext_queue_completed_insert
    AFTER INSERT ON @extschema@.steadytext_queue
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION @extschema@._steadytext_queue_notify_completed();

CREATE OR REPLACE TRIGGER steadytext_queue_completed_update
    AFTER UPDATE ON @extschema@.steadytext_queue
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION @extschema@._steadytext_queue_notify_completed();

-- ---------------------------------------------------------------------------
-- sql/src/46-pipeline-tables.sql
-- ---------------------------------------------------------------------------
-- Pipelines' tables (1.5.0; docs/pipelines.md).
-- Runs on a fresh install and again at the end of every upgrade script, so
-- every statement is repeatable (IF NOT EXISTS; policies dropped and made
-- again). A later change to these tables also needs its ALTER in that
-- version's upgrade script (sql/src/upgrades/), like the tables of
-- 10-tables.sql.

-- One row per pipeline: what it reads, runs and writes, and its progress.
CREATE SEQUENCE IF NOT EXISTS @extschema@.steadytext_pipelines_pipeline_id_seq AS integer;
CREATE TABLE IF NOT EXISTS @extschema@.steadytext_pipelines (
    pipeline_id   integer PRIMARY KEY DEFAULT nextval('@extschema@.steadytext_pipelines_pipeline_id_seq'),
    name          text NOT NULL UNIQUE,
    owner_role    name NOT NULL,            -- its creator: the worker's writes run with this role's rights
    source_table  regclass NOT NULL,
    key_columns   text[] NOT NULL,          -- the source's primary key; a row_key is their values as a JSON array
    input         text NOT NULL,            -- a column name or an expression over the row, as given
    dest_table    regclass NOT NULL,
    dest_column   text NOT NULL,
    dest_type     text NOT NULL,            -- format_type() of the destination column
    dimensions    integer,                  -- an embedding's size: the destination's (vector(n), halfvec(n)), else the first one written
    function_name text NOT NULL,
    parameters    jsonb NOT NULL,           -- the function's arguments but the input, defaults filled in
    priority      integer NOT NULL DEFAULT 0,
    use_cache     boolean NOT NULL DEFAULT false,
    batch_size    integer NOT NULL,
    paused        boolean NOT NULL DEFAULT false,
    blocked       boolean NOT NULL DEFAULT false,  -- refused by a worker (its model cannot fill the destination)
    version       integer NOT NULL DEFAULT 1,      -- +1 on a change of parameters or a rerun
    model_id      text NOT NULL,                   -- the model its values come from now
    scanning      boolean NOT NULL DEFAULT true,   -- the scan over existing rows (backfill, rerun, sweep) runs
    scan_after    jsonb,                           -- the scan's position: the last row_key scanned
    scan_started_at timestamptz,
    scan_done_at  timestamptz,
    sweep_interval interval,                       -- a new scan this long after the last one ended; NULL: none
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (batch_size BETWEEN 1 AND 10000)
);

-- One row per source row a pipeline knows: where its value stands.
-- status: 'pending' (to compute: new, changed, or of an older model /
-- version), 'processing' (in a worker's batch: worker_id, claim), 'done',
-- 'failed' (error). have_*: what the value in the destination was computed
-- from (the input's md5, the model, the pipeline version).
CREATE TABLE IF NOT EXISTS @extschema@.steadytext_pipeline_rows (
    pipeline_id  integer NOT NULL,
    row_key      jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'done', 'failed')),
    changed_at   timestamptz NOT NULL DEFAULT now(),   -- when it last became pending
    run_at       timestamptz NOT NULL DEFAULT now(),   -- not claimable before
    claim        bigint NOT NULL DEFAULT 0,            -- claim counter; a write must name the claim it ends
    worker_id    text,
    attempts     integer NOT NULL DEFAULT 0,
    busy         integer NOT NULL DEFAULT 0,               -- writes in a row that found it locked by a session
    error        text,
    have_hash    text,
    have_model   text,
    have_version integer,
    cache_key    text,                                 -- use_cache: the key its result is stored under
    done_at      timestamptz,
    PRIMARY KEY (pipeline_id, row_key)
);
CREATE INDEX IF NOT EXISTS steadytext_pipeline_rows_pending_idx
    ON @extschema@.steadytext_pipeline_rows (pipeline_id, changed_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS steadytext_pipeline_rows_processing_idx
    ON @extschema@.steadytext_pipeline_rows (worker_id) WHERE status = 'processing';

-- Claimed rows a worker could not give back (written, released) because a
-- session held them locked (its change to the row, not committed yet): the
-- reclaim puts them back to pending once free, unless that session's change
-- already did.
CREATE TABLE IF NOT EXISTS @extschema@.steadytext_pipeline_giveback (
    pipeline_id integer NOT NULL,
    row_key     jsonb NOT NULL,
    claim       bigint NOT NULL,
    PRIMARY KEY (pipeline_id, row_key)
);

-- Rows written per batch, for throughput (kept ten minutes).
CREATE TABLE IF NOT EXISTS @extschema@.steadytext_pipeline_progress (
    pipeline_id integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    rows        integer NOT NULL
);
CREATE INDEX IF NOT EXISTS steadytext_pipeline_progress_at_idx
    ON @extschema@.steadytext_pipeline_progress (pipeline_id, at);

-- A role sees and (through its pipelines' triggers, which run as it) marks
-- the rows of its own pipelines; admins and workers all.
ALTER TABLE @extschema@.steadytext_pipelines ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.steadytext_pipeline_rows ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS steadytext_pipelines_own ON @extschema@.steadytext_pipelines;
CREATE POLICY steadytext_pipelines_own ON @extschema@.steadytext_pipelines
    FOR SELECT USING (owner_role = current_user);
DROP POLICY IF EXISTS steadytext_pipelines_all ON @extschema@.steadytext_pipelines;
CREATE POLICY steadytext_pipelines_all ON @extschema@.steadytext_pipelines
    TO steadytext_admin, steadytext_worker USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS steadytext_pipeline_rows_own ON @extschema@.steadytext_pipeline_rows;
CREATE POLICY steadytext_pipeline_rows_own ON @extschema@.steadytext_pipeline_rows
    USING (EXISTS (SELECT 1 FROM @extschema@.steadytext_pipelines AS p
                   WHERE p.pipeline_id = steadytext_pipeline_rows.pipeline_id AND p.owner_role = current_user));
DROP POLICY IF EXISTS steadytext_pipeline_rows_all ON @extschema@.steadytext_pipeline_rows;
CREATE POLICY steadytext_pipeline_rows_all ON @extschema@.steadytext_pipeline_rows
    TO steadytext_admin, steadytext_worker USING (true) WITH CHECK (true);

-- pg_dump keeps the pipelines and where their rows stand (CREATE EXTENSION
-- only: under `steadytext migrate` every table is the database's own and is
-- dumped anyway). docs/pipelines.md says the restore order.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend AS d
               WHERE d.classid = 'pg_catalog.pg_class'::regclass
                 AND d.objid = '@extschema@.steadytext_pipelines'::regclass AND d.deptype = 'e') THEN
        PERFORM pg_catalog.pg_extension_config_dump('@extschema@.steadytext_pipelines', '');
        PERFORM pg_catalog.pg_extension_config_dump('@extschema@.steadytext_pipelines_pipeline_id_seq', '');
        PERFORM pg_catalog.pg_extension_config_dump('@extschema@.steadytext_pipeline_rows', '');
    END IF;
END;
$$;

-- ---------------------------------------------------------------------------
-- sql/src/47-pipelines.sql
-- ---------------------------------------------------------------------------
-- Pipelines (1.5.0; embeddings written from binary vectors since 1.6.0): AI
-- columns in users' tables that keep themselves up to date (docs/pipelines.md).
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).
--
-- How it holds together:
--   * Each pipeline gets four functions of its own, written here from its
--     definition and owned by its creator (SECURITY DEFINER as the creator,
--     search_path pinned): _stxp_<id>_changed (the statement triggers on the
--     source: inserts and input changes mark rows pending, deletes forget
--     them), _stxp_<id>_read (inputs of a batch), _stxp_<id>_scan (the
--     backfill / sweep, in key order) and _stxp_<id>_write (results into the
--     destination). So the user's expression runs, and the destination is
--     written, with the creator's rights and no one else's: the worker role
--     gains no privilege on users' tables, and the extension's own SECURITY
--     DEFINER functions call the creator's, never the user's code directly.
--   * steadytext_pipeline_rows holds where each source row stands. A worker
--     claims pending rows (FOR UPDATE SKIP LOCKED, a claim counter), reads
--     their inputs, runs one engine call per batch and writes every result
--     with one statement. The write names its claim: a row changed meanwhile
--     (its trigger set it back to pending) or claimed again is not written,
--     so a stale result never overwrites newer content; a source row another
--     session holds locked is skipped and retried ('busy'); a constraint or
--     trigger error fails that row only.
--   * Nothing here waits on a user's session without a bound: claims and
--     writes skip locked rows; the scan's inserts wait at most 100 ms.

-- ===========================================================================
-- From the job-type catalog (src/jobTypes.ts)
-- ===========================================================================

-- The argument a pipeline's input fills ('text_input', 'prompt'); NULL for a
-- function no pipeline may run.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_input(function_name text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE function_name
        -- @job-types pipeline-inputs
        WHEN 'generate'        THEN 'prompt'
        WHEN 'generate_json'   THEN 'prompt'
        WHEN 'generate_regex'  THEN 'prompt'
        WHEN 'generate_choice' THEN 'prompt'
        WHEN 'embed'           THEN 'text_input'
    END
$$;

-- The arguments of a function that have a default, with it (a JSON object).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_argument_defaults(function_name text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE function_name
        -- @job-types argument-defaults
        WHEN 'generate'        THEN '{"max_tokens":512,"use_cache":true,"seed":42}'::jsonb
        WHEN 'generate_json'   THEN '{"max_tokens":512,"use_cache":true,"seed":42}'::jsonb
        WHEN 'generate_regex'  THEN '{"max_tokens":512,"use_cache":true,"seed":42}'::jsonb
        WHEN 'generate_choice' THEN '{"max_tokens":512,"use_cache":true,"seed":42}'::jsonb
        WHEN 'embed'           THEN '{"use_cache":true}'::jsonb
        WHEN 'rerank'          THEN '{"task":"Given a web search query, retrieve relevant passages that answer the query","use_cache":true,"seed":42}'::jsonb
    END
$$;

-- ===========================================================================
-- The pipeline's own functions
-- ===========================================================================

-- `alias`'s key columns as a row_key (a JSON array).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_key_sql(key_columns text[], alias text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'jsonb_build_array(' || string_agg(alias || '.' || quote_ident(c), ', ' ORDER BY i) || ')'
    FROM unnest(key_columns) WITH ORDINALITY AS k(c, i)
$$;

-- The key columns' values out of the row_key `key_json` (an SQL expression),
-- a select list: (key_json->>0)::type0, ..., typed like `tbl`'s key columns.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_unkey_sql(tbl regclass, key_columns text[], key_json text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(format('(%s ->> %s)::%s', key_json, k.i - 1, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY k.i)
    FROM unnest(key_columns) WITH ORDINALITY AS k(c, i)
    JOIN pg_catalog.pg_attribute AS a ON a.attrelid = tbl AND a.attname = k.c
$$;

-- `alias`'s key columns as a row, (c0, ...), to compare with a subquery
-- selecting _steadytext_pipeline_unkey_sql.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_keyrow_sql(key_columns text[], alias text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '(' || string_agg(alias || '.' || quote_ident(c), ', ' ORDER BY i) || ')'
    FROM unnest(key_columns) WITH ORDINALITY AS k(c, i)
$$;

-- The SQL that turns a result (text, as steadytext_queue.result holds it)
-- into the destination's type; NULL when the destination cannot hold this
-- function's results.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_cast_sql(function_name text, dest_type oid, dest_typmod integer, v text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t constant text := format_type(dest_type, dest_typmod);
    name constant text := (SELECT y.typname FROM pg_catalog.pg_type AS y WHERE y.oid = dest_type);
BEGIN
    IF function_name = 'embed' THEN
        IF name IN ('vector', 'halfvec', 'jsonb', 'json') THEN
            RETURN format('CAST(%s AS %s)', v, t);
        ELSIF dest_type IN ('real[]'::regtype, 'double precision[]'::regtype, 'numeric[]'::regtype) THEN
            -- '[..]' -> '{..}' (btrim and two concatenations: a third of translate()'s cost on 1024 numbers)
            RETURN format('CAST(''{'' || btrim(%s, ''[]'') || ''}'' AS %s)', v, t);
        ELSIF dest_type IN ('text'::regtype, 'character varying'::regtype) THEN
            RETURN format('CAST(%s AS %s)', v, t);
        END IF;
    ELSIF function_name = 'generate_json' THEN
        IF dest_type IN ('jsonb'::regtype, 'json'::regtype, 'text'::regtype, 'character varying'::regtype) THEN
            RETURN format('CAST(%s AS %s)', v, t);
        END IF;
    ELSIF dest_type IN ('text'::regtype, 'character varying'::regtype) THEN
        RETURN format('CAST(%s AS %s)', v, t);
    ELSIF dest_type IN ('jsonb'::regtype, 'json'::regtype) THEN
        RETURN format('CAST(to_jsonb(%s) AS %s)', v, t);
    END IF;
    RETURN NULL;
END;
$$;

-- The SQL that turns an embedding given as a real[] (`v`, an SQL
-- expression) into the destination's type without going through text, or
-- NULL when the destination takes the text form only. Only destinations of
-- float32 values or less take it: real[] as it is, pgvector's vector and
-- halfvec through their casts from real[] (which check the size). Not
-- double precision[], numeric[], jsonb, json or text: they keep every digit
-- the engine's numbers carry, which float32 would round.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_vector_sql(function_name text, dest_type oid, dest_typmod integer, v text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN function_name IS DISTINCT FROM 'embed' THEN NULL
        WHEN dest_type = 'real[]'::regtype THEN v
        WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_cast AS c JOIN pg_catalog.pg_type AS y ON y.oid = c.casttarget
                     WHERE c.castsource = 'real[]'::regtype AND c.casttarget = dest_type
                       AND y.typname IN ('vector', 'halfvec'))
            THEN format('CAST(%s AS %s)', v, format_type(dest_type, dest_typmod))
    END
$$;

-- True when the worker sends pipeline `p`'s results as binary vectors (one
-- real[] a batch, _steadytext_pipeline_write's `vectors`): an embed pipeline
-- whose destination takes them (_steadytext_pipeline_vector_sql) and that
-- keeps no cache (the cache holds result text). Its text would cost the
-- worker and the server more than the write itself: 1024 numbers printed,
-- then parsed, a row.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_sends_vectors(p @extschema@.steadytext_pipelines)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.function_name = 'embed' AND NOT p.use_cache
       AND @extschema@._steadytext_pipeline_vector_sql(p.function_name, a.atttypid, a.atttypmod, 'v') IS NOT NULL
    FROM pg_catalog.pg_attribute AS a
    WHERE a.attrelid = p.dest_table AND a.attname = p.dest_column AND NOT a.attisdropped
$$;

-- The search_path a pipeline's own functions run with (so its input
-- expression and the destination's triggers resolve names as they do for
-- the creator's schema): pg_catalog first (no object of that schema
-- shadows a built-in), then the source table's schema, pg_temp last.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_path(source regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('pg_catalog, %I, pg_temp', n.nspname)
    FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.oid = source
$$;

-- (Re)writes pipeline `id`'s four functions and (unless `triggers` is
-- false) its triggers on the source, owned by its creator. Called by
-- _steadytext_pipeline_register, and by the claim for a pipeline whose
-- functions an older version wrote (functions only: no lock on the source).
-- SECURITY DEFINER context only.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_install(id integer, triggers boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p @extschema@.steadytext_pipelines;
    s constant text := '@extschema@';
    fn text;
    src text;
    rel text;
    expr text;
    dest_attr record;
    cast_v text;
    key_new text;
    key_cols text;
    key_row text;
    unkey text;
    unkey_i text;
    same_table boolean;
    inputs text;
    dest_write text;
    dest_forget text := '';
    dest_forget_all text := '';
    body text;
    f text;
    path text;
BEGIN
    SELECT * INTO STRICT p FROM @extschema@.steadytext_pipelines AS x WHERE x.pipeline_id = id;
    fn := format('%s._stxp_%s', s, id);
    src := p.source_table::text;
    path := @extschema@._steadytext_pipeline_path(p.source_table);
    rel := quote_ident((SELECT c.relname FROM pg_catalog.pg_class AS c WHERE c.oid = p.source_table));
    expr := CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS a
                              WHERE a.attrelid = p.source_table AND a.attname = p.input AND a.attnum > 0 AND NOT a.attisdropped)
                 THEN quote_ident(p.input) ELSE p.input END;
    SELECT a.atttypid, a.atttypmod INTO dest_attr FROM pg_catalog.pg_attribute AS a
    WHERE a.attrelid = p.dest_table AND a.attname = p.dest_column;
    cast_v := @extschema@._steadytext_pipeline_cast_sql(p.function_name, dest_attr.atttypid, dest_attr.atttypmod, 'i._stx_v');
    IF p.function_name = 'embed' THEN
        -- an embedding sent as a vector (i._stx_x, a slice of the batch's
        -- real[]): cast as it is where the destination takes it, else
        -- through its text form
        cast_v := format('CASE WHEN i._stx_x IS NULL THEN %s ELSE %s END', cast_v,
                         coalesce(@extschema@._steadytext_pipeline_vector_sql(p.function_name, dest_attr.atttypid, dest_attr.atttypmod, 'i._stx_x'),
                                  @extschema@._steadytext_pipeline_cast_sql(p.function_name, dest_attr.atttypid, dest_attr.atttypmod,
                                                                            $x$('[' || array_to_string(i._stx_x, ',') || ']')$x$)));
    END IF;
    key_new := @extschema@._steadytext_pipeline_key_sql(p.key_columns, rel);
    key_row := @extschema@._steadytext_pipeline_keyrow_sql(p.key_columns, rel);   -- (source.k0, ...)
    key_cols := substr(key_row, 2, length(key_row) - 2);                           -- source.k0, ... (ORDER BY)
    unkey := @extschema@._steadytext_pipeline_unkey_sql(p.source_table, p.key_columns, '_stx_k');
    unkey_i := @extschema@._steadytext_pipeline_unkey_sql(p.source_table, p.key_columns, 'i._stx_k');
    same_table := p.dest_table = p.source_table;

    -- Marks inserted rows and rows whose input changed pending; forgets
    -- deleted ones (and, for another table, their results). A statement
    -- trigger with transition tables: one statement per user statement,
    -- however many rows (COPY included).
    IF NOT same_table THEN
        dest_forget := format(
            ', dest_gone AS (DELETE FROM %s AS _stx_d WHERE %s IN (SELECT %s FROM gone_keys AS g))',
            p.dest_table, @extschema@._steadytext_pipeline_keyrow_sql(p.key_columns, '_stx_d'),
            @extschema@._steadytext_pipeline_unkey_sql(p.source_table, p.key_columns, 'g._stx_k'));
        dest_forget_all := format('DELETE FROM %s;', p.dest_table);
    END IF;
    body := format($body$
#variable_conflict use_column
DECLARE
    _stx_count bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO %1$s.steadytext_pipeline_rows AS r (pipeline_id, row_key)
        SELECT %2$s, %3$s FROM _stx_new AS %4$s
        ON CONFLICT (pipeline_id, row_key) DO UPDATE
        SET status = 'pending', changed_at = now(), run_at = now(), attempts = 0, error = NULL;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH n AS (SELECT %3$s AS _stx_k, (%5$s)::text AS _stx_v FROM _stx_new AS %4$s),
             o AS (SELECT %3$s AS _stx_k, (%5$s)::text AS _stx_v FROM _stx_old AS %4$s),
             gone_keys AS (SELECT o._stx_k FROM o LEFT JOIN n ON n._stx_k = o._stx_k WHERE n._stx_k IS NULL),
             gone AS (DELETE FROM %1$s.steadytext_pipeline_rows AS r USING gone_keys
                      WHERE r.pipeline_id = %2$s AND r.row_key = gone_keys._stx_k)
             %6$s,
             marked AS (INSERT INTO %1$s.steadytext_pipeline_rows AS r (pipeline_id, row_key)
                        SELECT %2$s, n._stx_k FROM n LEFT JOIN o ON o._stx_k = n._stx_k
                        WHERE o._stx_k IS NULL OR o._stx_v IS DISTINCT FROM n._stx_v
                        ON CONFLICT (pipeline_id, row_key) DO UPDATE
                        SET status = 'pending', changed_at = now(), run_at = now(), attempts = 0, error = NULL
                        RETURNING 1)
        SELECT count(*) INTO STRICT _stx_count FROM marked;
        IF _stx_count = 0 THEN
            RETURN NULL;
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        WITH gone_keys AS (SELECT %3$s AS _stx_k FROM _stx_old AS %4$s),
             gone AS (DELETE FROM %1$s.steadytext_pipeline_rows AS r USING gone_keys
                      WHERE r.pipeline_id = %2$s AND r.row_key = gone_keys._stx_k
                      RETURNING 1)
             %6$s
        SELECT count(*) INTO STRICT _stx_count FROM gone;
        RETURN NULL;
    ELSE
        DELETE FROM %1$s.steadytext_pipeline_rows AS r WHERE r.pipeline_id = %2$s;
        %7$s
        RETURN NULL;
    END IF;
    PERFORM pg_notify('steadytext_pipeline', '%2$s');
    RETURN NULL;
END;
$body$, s, id, key_new, rel, expr, dest_forget, dest_forget_all);
    EXECUTE format('CREATE OR REPLACE FUNCTION %s_changed() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER '
                   'SET search_path = %s AS %L', fn, path, body);

    -- The inputs of a batch's rows (row_key, input text); rows gone are absent.
    EXECUTE format($f$CREATE OR REPLACE FUNCTION %s_read(jsonb[]) RETURNS TABLE(row_key jsonb, input text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %s
        AS %L$f$, fn, path,
        format('SELECT %s, (%s)::text FROM %s WHERE %s IN (SELECT %s FROM unnest($1) AS _stx_u(_stx_k))',
               key_new, expr, src, key_row, unkey));

    -- The next `$2` rows after row_key `$1` (NULL: from the start) in key
    -- order, with their input's md5.
    EXECUTE format($f$CREATE OR REPLACE FUNCTION %s_scan(jsonb, integer) RETURNS TABLE(row_key jsonb, input_hash text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %s
        AS %L$f$, fn, path,
        format('SELECT %s, md5((%s)::text) FROM %s WHERE $1 IS NULL OR %s > (SELECT %s FROM (SELECT $1) AS _stx_u(_stx_k)) ORDER BY %s LIMIT $2',
               key_new, expr, src, key_row, unkey, key_cols));

    -- Writes results: ($1 row_keys, $2 input md5s, $3 result texts, $4 the
    -- batch's embeddings as one real[] of $6 values each, $5 where each row's
    -- starts in it (NULL: its text, or NULL)) -> (row_key, outcome, error).
    -- The real[] is sliced from its flat form (_stx_all, made once): PL/pgSQL
    -- holds an array variable expanded, and a slice of an expanded array
    -- flattens the whole of it first, for every row. Same table: the row is
    -- locked (SKIP LOCKED: 'busy'), its input's md5 compared with the one
    -- computed from ('stale'), gone ('missing'). Another table: upserted on the key columns. One statement
    -- for the batch; should it fail (a constraint, a trigger), row by row,
    -- each failure its own.
    inputs := $w$
        WITH _stx_all AS MATERIALIZED (SELECT _stx_vecs AS _stx_flat),
             i AS (SELECT _stx_u.*, (SELECT _stx_flat FROM _stx_all)[_stx_u._stx_a : _stx_u._stx_a + _stx_dims - 1] AS _stx_x
                   FROM unnest(_stx_keys, _stx_hashes, _stx_vals, _stx_starts) AS _stx_u(_stx_k, _stx_h, _stx_v, _stx_a)),$w$;
    IF same_table THEN
        dest_write := inputs || format($w$
             live AS (SELECT %1$s.ctid AS _stx_tid, %2$s AS _stx_k, md5((%3$s)::text) AS _stx_h
                      FROM %4$s WHERE %5$s IN (SELECT %6$s FROM i)
                      FOR UPDATE OF %1$s SKIP LOCKED),
             upd AS (UPDATE %4$s SET %7$I = %8$s FROM live JOIN i ON i._stx_k = live._stx_k
                     WHERE %1$s.ctid = live._stx_tid AND live._stx_h IS NOT DISTINCT FROM i._stx_h
                     RETURNING live._stx_k)
        SELECT array_agg(i._stx_k), array_agg(CASE WHEN u._stx_k IS NOT NULL THEN 'written'
                                                   WHEN l._stx_k IS NOT NULL THEN 'stale'
                                                   WHEN EXISTS (SELECT 1 FROM %4$s WHERE %5$s = (SELECT %6$s)) THEN 'busy'
                                                   ELSE 'missing' END)
        INTO _stx_out_k, _stx_out_o
        FROM i LEFT JOIN live AS l ON l._stx_k = i._stx_k LEFT JOIN upd AS u ON u._stx_k = i._stx_k$w$,
            rel, key_new, expr, src, key_row, unkey_i, p.dest_column, cast_v);
    ELSE
        dest_write := inputs || format($w$
             live AS (SELECT %1$s AS _stx_k, md5((%2$s)::text) AS _stx_h FROM %3$s WHERE %4$s IN (SELECT %5$s FROM i)),
             ups AS (INSERT INTO %6$s AS _stx_d (%7$s, %8$I)
                     SELECT %9$s, %10$s FROM i JOIN live ON live._stx_k = i._stx_k
                     WHERE live._stx_h IS NOT DISTINCT FROM i._stx_h
                     ON CONFLICT (%7$s) DO UPDATE SET %8$I = excluded.%8$I
                     RETURNING %11$s AS _stx_k)
        SELECT array_agg(i._stx_k), array_agg(CASE WHEN u._stx_k IS NOT NULL THEN 'written'
                                                   WHEN l._stx_k IS NOT NULL THEN 'stale'
                                                   ELSE 'missing' END)
        INTO _stx_out_k, _stx_out_o
        FROM i LEFT JOIN live AS l ON l._stx_k = i._stx_k LEFT JOIN ups AS u ON u._stx_k = i._stx_k$w$,
            key_new, expr, src, key_row, unkey_i, p.dest_table,
            (SELECT string_agg(quote_ident(c), ', ' ORDER BY i) FROM unnest(p.key_columns) WITH ORDINALITY AS k(c, i)),
            p.dest_column, unkey_i, cast_v, @extschema@._steadytext_pipeline_key_sql(p.key_columns, '_stx_d'));
    END IF;
    body := format($body$
#variable_conflict use_column
DECLARE
    _stx_keys jsonb[];
    _stx_hashes text[];
    _stx_vals text[];
    _stx_vecs real[];
    _stx_starts integer[];
    _stx_dims integer;
    _stx_out_k jsonb[];
    _stx_out_o text[];
    _stx_n integer;
BEGIN
    BEGIN
        _stx_keys := $1; _stx_hashes := $2; _stx_vals := $3; _stx_vecs := $4; _stx_starts := $5; _stx_dims := $6;
        %1$s;
        RETURN QUERY SELECT u.k, u.o, NULL::text FROM unnest(_stx_out_k, _stx_out_o) AS u(k, o);
        RETURN;
    EXCEPTION WHEN OTHERS THEN
        NULL;  -- one row's constraint or trigger failed the statement: row by row
    END;
    FOR _stx_n IN 1 .. coalesce(array_length($1, 1), 0) LOOP
        BEGIN
            _stx_keys := ARRAY[$1[_stx_n]]; _stx_hashes := ARRAY[$2[_stx_n]]; _stx_vals := ARRAY[$3[_stx_n]];
            _stx_starts := ARRAY[$5[_stx_n]];
            %1$s;
            row_key := _stx_out_k[1]; outcome := _stx_out_o[1]; error := NULL;
        EXCEPTION
            WHEN lock_not_available THEN
                row_key := $1[_stx_n]; outcome := 'busy'; error := NULL;
            WHEN OTHERS THEN
                row_key := $1[_stx_n]; outcome := 'failed'; error := SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END;
$body$, dest_write);
    -- 1.5.0's form, before results came as vectors
    EXECUTE format('DROP FUNCTION IF EXISTS %s_write(jsonb[], text[], text[])', fn);
    EXECUTE format($f$CREATE OR REPLACE FUNCTION %s_write(jsonb[], text[], text[], real[], integer[], integer)
        RETURNS TABLE(row_key jsonb, outcome text, error text)
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = %s SET lock_timeout = '200ms'
        AS %L$f$, fn, path, body);

    FOREACH f IN ARRAY ARRAY['_changed()', '_read(jsonb[])', '_scan(jsonb, integer)', '_write(jsonb[], text[], text[], real[], integer[], integer)'] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s%s FROM PUBLIC', fn, f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s%s TO %I', fn, f, current_user);
        EXECUTE format('ALTER FUNCTION %s%s OWNER TO %I', fn, f, p.owner_role);
    END LOOP;

    -- The triggers (a rewrite replaces them).
    IF NOT triggers THEN
        RETURN;
    END IF;
    FOR f IN SELECT t.tgname FROM pg_catalog.pg_trigger AS t
             WHERE t.tgrelid = p.source_table AND t.tgname LIKE '\_stxp\_' || id || '\_%' LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', f, src);
    END LOOP;
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS _stx_new FOR EACH STATEMENT EXECUTE FUNCTION %s_changed()',
                   '_stxp_' || id || '_insert', src, fn);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING OLD TABLE AS _stx_old NEW TABLE AS _stx_new FOR EACH STATEMENT EXECUTE FUNCTION %s_changed()',
                   '_stxp_' || id || '_update', src, fn);
    EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS _stx_old FOR EACH STATEMENT EXECUTE FUNCTION %s_changed()',
                   '_stxp_' || id || '_delete', src, fn);
    EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s_changed()',
                   '_stxp_' || id || '_truncate', src, fn);
END;
$$;

-- Drops pipeline `id`'s triggers and functions (the source may be gone).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_uninstall(id integer, source regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := format('%s._stxp_%s', '@extschema@', id);
    t text;
BEGIN
    FOR t IN SELECT x.tgname FROM pg_catalog.pg_trigger AS x
             WHERE x.tgrelid = source AND x.tgname LIKE '\_stxp\_' || id || '\_%' LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', t, source);
    END LOOP;
    EXECUTE format('DROP FUNCTION IF EXISTS %s_changed(), %s_read(jsonb[]), %s_scan(jsonb, integer), %s_write(jsonb[], text[], text[]), '
                   '%s_write(jsonb[], text[], text[], real[], integer[], integer)', fn, fn, fn, fn, fn);
END;
$$;

-- ===========================================================================
-- Declaring and controlling pipelines
-- ===========================================================================

-- Pipeline `name` as `caller` may act on it (its owner, or a role that sees
-- every request); 22004 for NULL, 42704 when there is none (another role's
-- counts as none). SECURITY DEFINER context only.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_get(fn text, name text, caller name)
RETURNS @extschema@.steadytext_pipelines
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p @extschema@.steadytext_pipelines;
BEGIN
    PERFORM @extschema@._steadytext_check_not_null(fn, 'name', name IS NULL);
    SELECT * INTO p FROM @extschema@.steadytext_pipelines AS x
    WHERE x.name = _steadytext_pipeline_get.name
      AND (x.owner_role = caller OR @extschema@._steadytext_sees_all(caller));
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: pipeline % does not exist', fn, quote_literal(name)
            USING ERRCODE = 'undefined_object', HINT = 'steadytext_pipeline_status() lists your pipelines.';
    END IF;
    RETURN p;
END;
$$;

-- Declares a pipeline (docs/pipelines.md) and starts its backfill; returns
-- its id. Raises 22004 for a NULL argument, 22023 for a bad name, input,
-- function, parameter or batch size (as the async functions do for the
-- parameters), 42P01/42703 for a destination that does not exist, 42804 for
-- a destination type that cannot hold the function's results, 42501 when
-- the caller lacks a right the pipeline's writes need, 42710 for a name in
-- use. The input is checked here, with the caller's own rights.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_pipeline_create(
    name TEXT,
    source REGCLASS,
    input TEXT,
    destination TEXT,
    function_name TEXT DEFAULT 'embed',
    parameters JSONB DEFAULT '{}',
    priority INTEGER DEFAULT 0,
    use_cache BOOLEAN DEFAULT false,
    batch_size INTEGER DEFAULT NULL
) RETURNS INTEGER
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_pipeline_create';
BEGIN
    PERFORM @extschema@._steadytext_check_not_null(fn, 'source', source IS NULL);
    PERFORM @extschema@._steadytext_check_text(fn, 'input', input, 10000);
    -- the expression compiles over the source, with the caller's rights and
    -- the search_path the pipeline's functions will run with (restored by
    -- this function's own SET on the way out, error or not)
    BEGIN
        PERFORM set_config('search_path', @extschema@._steadytext_pipeline_path(source), true);
        EXECUTE format('SELECT (%s)::text FROM %s LIMIT 0', input, source);
        PERFORM set_config('search_path', 'pg_catalog, pg_temp', true);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION '%: input % is not an expression over %: %', fn, quote_literal(input), source, SQLERRM
            USING ERRCODE = CASE WHEN SQLSTATE = '42501' THEN '42501' ELSE 'invalid_parameter_value' END,
                  HINT = 'Name a column, or write an expression over the row; schema-qualify what is neither in pg_catalog nor in the source''s schema.';
    END;
    RETURN @extschema@._steadytext_pipeline_register(name, source, input, destination, function_name, parameters,
                                                     priority, use_cache, batch_size);
END;
$$;

-- steadytext_pipeline_create's checks and writes, for `caller` (SECURITY
-- DEFINER: it makes functions owned by the caller and triggers on the
-- source, after checking the caller holds every right they use).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_register(
    name text, source regclass, input text, destination text, function_name text, parameters jsonb,
    priority integer, use_cache boolean, batch_size integer, caller name DEFAULT current_user)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_pipeline_create';
    owner constant name := @extschema@._steadytext_caller(caller);
    input_arg constant text := @extschema@._steadytext_pipeline_input(function_name);
    keys text[];
    dest_table regclass;
    dest_column text;
    parts text[];
    dest record;
    params jsonb;
    dims integer;
    known integer;
    model text;
    id integer;
BEGIN
    PERFORM @extschema@._steadytext_check_text(fn, 'name', name, 63);
    PERFORM @extschema@._steadytext_check_not_null(fn, 'destination', destination IS NULL);
    PERFORM @extschema@._steadytext_check_not_null(fn, 'function_name', function_name IS NULL);
    PERFORM @extschema@._steadytext_check_not_null(fn, 'parameters', parameters IS NULL);
    PERFORM @extschema@._steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class AS c WHERE c.oid = source AND c.relkind IN ('r', 'p')) THEN
        RAISE EXCEPTION '%: source % is not a table', fn, source USING ERRCODE = 'wrong_object_type';
    END IF;
    SELECT array_agg(a.attname::text ORDER BY k.i) INTO keys
    FROM pg_catalog.pg_index AS x
    CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, i)
    JOIN pg_catalog.pg_attribute AS a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
    WHERE x.indrelid = source AND x.indisprimary;
    IF keys IS NULL THEN
        RAISE EXCEPTION '%: source % has no primary key', fn, source
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A pipeline tells rows apart by the primary key: add one.';
    END IF;
    IF input_arg IS NULL THEN
        RAISE EXCEPTION '%: function_name % cannot run in a pipeline (embed, generate, generate_json, generate_regex, generate_choice)',
            fn, quote_literal(function_name) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(parameters) <> 'object' THEN
        RAISE EXCEPTION '%: parameters must be a JSON object', fn USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF parameters ? input_arg OR parameters ? 'use_cache' THEN
        RAISE EXCEPTION '%: parameters must not hold %: %', fn,
            CASE WHEN parameters ? input_arg THEN input_arg || ' (it comes from input)' ELSE 'use_cache (an argument of its own)' END,
            'each row''s input fills ' || input_arg
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    params := (@extschema@._steadytext_argument_defaults(function_name) - 'use_cache') || parameters;
    PERFORM @extschema@._steadytext_validate(fn, function_name, params || '{"use_cache": false}', ARRAY[input_arg]);
    PERFORM @extschema@._steadytext_check_priority(fn, priority);
    batch_size := coalesce(batch_size, CASE WHEN function_name = 'embed' THEN 64 ELSE 8 END);
    IF batch_size NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION '%: batch_size must be between 1 and 10000, got %', fn, batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- destination: a column of the source, or [schema.]table.column keyed
    -- like it (a table without a schema is in the source's)
    BEGIN
        parts := parse_ident(destination);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION '%: destination %: %', fn, quote_literal(destination), SQLERRM USING ERRCODE = 'invalid_parameter_value';
    END;
    IF cardinality(parts) = 1 THEN
        dest_table := source;
    ELSIF cardinality(parts) IN (2, 3) THEN
        dest_table := to_regclass(format('%I.%I',
            CASE WHEN cardinality(parts) = 3 THEN parts[1]
                 ELSE (SELECT n.nspname FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
                       WHERE c.oid = source) END,
            parts[cardinality(parts) - 1]));
        IF dest_table IS NULL THEN
            RAISE EXCEPTION '%: destination table of % does not exist', fn, quote_literal(destination)
                USING ERRCODE = 'undefined_table';
        END IF;
    ELSE
        RAISE EXCEPTION '%: destination % is not column, table.column or schema.table.column', fn, quote_literal(destination)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    dest_column := parts[cardinality(parts)];
    SELECT a.atttypid, a.atttypmod, a.attgenerated, y.typname INTO dest
    FROM pg_catalog.pg_attribute AS a JOIN pg_catalog.pg_type AS y ON y.oid = a.atttypid
    WHERE a.attrelid = dest_table AND a.attname = dest_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: destination column % of % does not exist', fn, quote_ident(dest_column), dest_table
            USING ERRCODE = 'undefined_column';
    END IF;
    IF dest.attgenerated <> '' OR (dest_table = source AND (dest_column = ANY (keys) OR dest_column = input)) THEN
        RAISE EXCEPTION '%: destination % cannot be written (a key column, the input or a generated column)', fn, quote_literal(destination)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF @extschema@._steadytext_pipeline_cast_sql(function_name, dest.atttypid, dest.atttypmod, 'v') IS NULL THEN
        RAISE EXCEPTION '%: destination % is %, which cannot hold % results', fn, quote_literal(destination),
            format_type(dest.atttypid, dest.atttypmod), function_name
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'embed: vector, halfvec, real[], double precision[], jsonb or text; generate_json: jsonb or text; the others: text or jsonb.';
    END IF;
    IF dest.typname IN ('vector', 'halfvec') AND dest.atttypmod > 0 THEN
        dims := dest.atttypmod;
    END IF;
    IF dest_table <> source THEN
        IF (SELECT count(*) FROM pg_catalog.pg_attribute AS a
            WHERE a.attrelid = dest_table AND a.attname = ANY (keys) AND a.attnum > 0 AND NOT a.attisdropped) <> cardinality(keys)
           OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index AS x WHERE x.indrelid = dest_table AND x.indisunique AND x.indpred IS NULL
                          AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_catalog.pg_attribute AS a
                               WHERE a.attrelid = dest_table AND a.attnum = ANY (x.indkey))
                              = (SELECT array_agg(k ORDER BY k) FROM unnest(keys) AS k)) THEN
            RAISE EXCEPTION '%: destination table % needs the source''s key columns (%) with a unique index on them', fn, dest_table,
                array_to_string(keys, ', ') USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;

    -- the rights its functions use, the caller's own
    IF NOT has_table_privilege(owner, source, 'SELECT') OR NOT has_table_privilege(owner, source, 'TRIGGER') THEN
        RAISE EXCEPTION '%: role % needs SELECT and TRIGGER on %', fn, quote_ident(owner), source
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF dest_table = source AND NOT has_column_privilege(owner, source, dest_column, 'UPDATE') THEN
        RAISE EXCEPTION '%: role % needs UPDATE on column % of %', fn, quote_ident(owner), quote_ident(dest_column), source
            USING ERRCODE = 'insufficient_privilege';
    ELSIF dest_table <> source AND NOT has_table_privilege(owner, dest_table, 'SELECT, INSERT, UPDATE, DELETE') THEN
        RAISE EXCEPTION '%: role % needs SELECT, INSERT, UPDATE and DELETE on %', fn, quote_ident(owner), dest_table
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    model := @extschema@._steadytext_model_id(@extschema@._steadytext_model_role(function_name));
    known := (SELECT (c.value #>> '{}')::integer FROM @extschema@.steadytext_config AS c WHERE c.key = 'dimensions.' || model);
    IF dims IS NOT NULL AND known IS NOT NULL AND known <> dims THEN
        RAISE EXCEPTION '%: destination % holds % dimensions, but the embedding model % gives %', fn, quote_literal(destination),
            dims, model, known
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Add a column of type vector(%s) and make the pipeline write there.', known);
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.steadytext_pipelines AS x WHERE x.name = _steadytext_pipeline_register.name) THEN
        RAISE EXCEPTION '%: a pipeline named % exists already', fn, quote_literal(name) USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO @extschema@.steadytext_pipelines AS x
        (name, owner_role, source_table, key_columns, input, dest_table, dest_column, dest_type, dimensions, function_name,
         parameters, priority, use_cache, batch_size, model_id, scan_started_at, sweep_interval)
    VALUES (name, owner, source, keys, input, dest_table, dest_column, format_type(dest.atttypid, dest.atttypmod), dims,
            function_name, params - input_arg, priority, use_cache, batch_size, model, now(), interval '1 hour')
    RETURNING x.pipeline_id INTO id;
    BEGIN
        PERFORM @extschema@._steadytext_pipeline_install(id);
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE EXCEPTION '%: the pipeline''s functions cannot be given to role %: %', fn, quote_ident(owner), SQLERRM
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'The role that installed pg_steadytext must be a superuser, or role ' || quote_ident(owner)
                         || ' needs CREATE on schema @extschema@.';
    END;
    PERFORM pg_notify('steadytext_pipeline', id::text);
    RETURN id;
END;
$$;

-- One change to pipeline `name` for `caller`: 'alter' (new parameters,
-- priority, use_cache, batch_size: NULL keeps), 'pause', 'resume', 'rerun',
-- 'retry' (returns the rows made pending again), 'drop'. SECURITY DEFINER.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_change(
    fn text, name text, action text, parameters jsonb DEFAULT NULL, priority integer DEFAULT NULL,
    use_cache boolean DEFAULT NULL, batch_size integer DEFAULT NULL, caller name DEFAULT current_user)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p @extschema@.steadytext_pipelines := @extschema@._steadytext_pipeline_get(fn, name, @extschema@._steadytext_caller(caller));
    input_arg constant text := @extschema@._steadytext_pipeline_input(p.function_name);
    params jsonb;
    n bigint := 0;
BEGIN
    PERFORM 1 FROM @extschema@.steadytext_pipelines AS x WHERE x.pipeline_id = p.pipeline_id FOR UPDATE;
    CASE action
    WHEN 'alter' THEN
        IF parameters IS NOT NULL THEN
            IF jsonb_typeof(parameters) <> 'object' OR parameters ? input_arg OR parameters ? 'use_cache' THEN
                RAISE EXCEPTION '%: parameters must be a JSON object of the function''s arguments other than % and use_cache', fn, input_arg
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            params := (@extschema@._steadytext_argument_defaults(p.function_name) - 'use_cache') || parameters;
            PERFORM @extschema@._steadytext_validate(fn, p.function_name, params || '{"use_cache": false}', ARRAY[input_arg]);
            params := params - input_arg;
        END IF;
        IF priority IS NOT NULL THEN
            PERFORM @extschema@._steadytext_check_priority(fn, priority);
        END IF;
        IF batch_size IS NOT NULL AND batch_size NOT BETWEEN 1 AND 10000 THEN
            RAISE EXCEPTION '%: batch_size must be between 1 and 10000, got %', fn, batch_size
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        UPDATE @extschema@.steadytext_pipelines AS x SET
            parameters = coalesce(params, x.parameters),
            priority = coalesce(_steadytext_pipeline_change.priority, x.priority),
            use_cache = coalesce(_steadytext_pipeline_change.use_cache, x.use_cache),
            batch_size = coalesce(_steadytext_pipeline_change.batch_size, x.batch_size),
            -- new parameters: every value is recomputed in the background
            version = x.version + CASE WHEN params IS DISTINCT FROM NULL AND params <> x.parameters THEN 1 ELSE 0 END,
            scanning = x.scanning OR (params IS NOT NULL AND params <> x.parameters),
            scan_after = CASE WHEN params IS NOT NULL AND params <> x.parameters THEN NULL ELSE x.scan_after END,
            scan_started_at = CASE WHEN params IS NOT NULL AND params <> x.parameters THEN now() ELSE x.scan_started_at END
        WHERE x.pipeline_id = p.pipeline_id;
    WHEN 'pause' THEN
        UPDATE @extschema@.steadytext_pipelines AS x SET paused = true WHERE x.pipeline_id = p.pipeline_id;
    WHEN 'resume' THEN
        UPDATE @extschema@.steadytext_pipelines AS x SET paused = false, blocked = false, last_error = NULL
        WHERE x.pipeline_id = p.pipeline_id;
    WHEN 'rerun' THEN
        UPDATE @extschema@.steadytext_pipelines AS x
        SET version = x.version + 1, scanning = true, scan_after = NULL, scan_started_at = now()
        WHERE x.pipeline_id = p.pipeline_id;
    WHEN 'retry' THEN
        UPDATE @extschema@.steadytext_pipeline_rows AS r
        SET status = 'pending', attempts = 0, error = NULL, run_at = now(), changed_at = now()
        WHERE r.pipeline_id = p.pipeline_id AND r.status = 'failed';
        GET DIAGNOSTICS n = ROW_COUNT;
    WHEN 'drop' THEN
        PERFORM @extschema@._steadytext_pipeline_uninstall(p.pipeline_id, p.source_table);
        DELETE FROM @extschema@.steadytext_pipeline_rows AS r WHERE r.pipeline_id = p.pipeline_id;
        DELETE FROM @extschema@.steadytext_pipeline_progress AS r WHERE r.pipeline_id = p.pipeline_id;
        DELETE FROM @extschema@.steadytext_pipeline_giveback AS r WHERE r.pipeline_id = p.pipeline_id;
        DELETE FROM @extschema@.steadytext_pipelines AS x WHERE x.pipeline_id = p.pipeline_id;
        RETURN 0;
    END CASE;
    PERFORM pg_notify('steadytext_pipeline', p.pipeline_id::text);
    RETURN n;
END;
$$;

-- New parameters, priority, use_cache or batch_size (NULL keeps the
-- current). New parameters recompute every row in the background; the old
-- values stay readable until each row's new one is written. Raises as
-- steadytext_pipeline_create for bad values, 42704 for an unknown pipeline.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_pipeline_alter(
    name TEXT,
    parameters JSONB DEFAULT NULL,
    priority INTEGER DEFAULT NULL,
    use_cache BOOLEAN DEFAULT NULL,
    batch_size INTEGER DEFAULT NULL
) RETURNS VOID
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT FROM @extschema@._steadytext_pipeline_change('steadytext_pipeline_alter', name, 'alter', parameters, priority,
                                                        use_cache, batch_size)
$$;

-- Stops computing (changes are still recorded); 42704 for an unknown pipeline.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_pipeline_pause(name TEXT) RETURNS VOID
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT FROM @extschema@._steadytext_pipeline_change('steadytext_pipeline_pause', name, 'pause')
$$;

-- Computes again (also after a worker refused the pipeline's model: clears
-- last_error); 42704 for an unknown pipeline.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_pipeline_resume(name TEXT) RETURNS VOID
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT FROM @extschema@._steadytext_pipeline_change('steadytext_pipeline_resume', name, 'resume')
$$;

-- Recomputes every row in the background (old values stay readable); 42704
-- for an unknown pipeline.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_pipeline_rerun(name TEXT) RETURNS VOID
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT FROM @extschema@._steadytext_pipeline_change('steadytext_pipeline_rerun', name, 'rerun')
$$;

-- Failed rows back to pending; returns how many. 42704 for an unknown pipeline.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_pipeline_retry(name TEXT) RETURNS BIGINT
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_pipeline_change('steadytext_pipeline_retry', name, 'retry')
$$;

-- Drops the pipeline: its triggers, functions and bookkeeping. The
-- destination keeps its values. 42704 for an unknown pipeline.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_pipeline_drop(name TEXT) RETURNS VOID
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT FROM @extschema@._steadytext_pipeline_change('steadytext_pipeline_drop', name, 'drop')
$$;

-- ===========================================================================
-- Status
-- ===========================================================================

-- Every pipeline `caller` may see (or the one named), with where its rows
-- stand (docs/pipelines.md lists the columns). SECURITY DEFINER: reads the
-- bookkeeping, and counts the source while the first backfill scans.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_report(only_name text, caller name DEFAULT current_user)
RETURNS TABLE(name text, source text, input text, destination text, function_name text, model_id text,
              priority integer, paused boolean, "rows" bigint, done bigint, pending bigint, processing bigint,
              failed bigint, stale bigint, coverage double precision, lag_seconds double precision,
              throughput double precision, backfilling boolean, models jsonb, last_error text,
              created_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    who constant name := @extschema@._steadytext_caller(caller);
    p @extschema@.steadytext_pipelines;
    c record;
    total bigint;
BEGIN
    FOR p IN
        SELECT * FROM @extschema@.steadytext_pipelines AS x
        WHERE (only_name IS NULL OR x.name = only_name)
          AND (x.owner_role = who OR @extschema@._steadytext_sees_all(who))
        ORDER BY x.name
    LOOP
        -- one pass over the pipeline's rows, by status, model and version
        -- (a handful of groups), every figure read off the groups
        WITH g AS (SELECT r.status, r.have_model, r.have_version, count(*) AS n,
                          min(r.changed_at) FILTER (WHERE r.status IN ('pending', 'processing')) AS oldest
                   FROM @extschema@.steadytext_pipeline_rows AS r WHERE r.pipeline_id = p.pipeline_id
                   GROUP BY r.status, r.have_model, r.have_version)
        SELECT coalesce(sum(g.n), 0)::bigint AS known,
               coalesce(sum(g.n) FILTER (WHERE g.status = 'done' AND g.have_model = p.model_id AND g.have_version = p.version), 0)::bigint AS done,
               coalesce(sum(g.n) FILTER (WHERE g.status = 'pending'), 0)::bigint AS pending,
               coalesce(sum(g.n) FILTER (WHERE g.status = 'processing'), 0)::bigint AS processing,
               coalesce(sum(g.n) FILTER (WHERE g.status = 'failed'), 0)::bigint AS failed,
               coalesce(sum(g.n) FILTER (WHERE g.status <> 'failed' AND g.have_model IS NOT NULL
                                           AND (g.have_model <> p.model_id OR g.have_version <> p.version)), 0)::bigint AS stale,
               min(g.oldest) AS oldest,
               coalesce((SELECT jsonb_object_agg(m.have_model, m.n)
                         FROM (SELECT h.have_model, sum(h.n) AS n FROM g AS h
                               WHERE h.have_model IS NOT NULL GROUP BY h.have_model) AS m), '{}'::jsonb) AS models
        INTO c
        FROM g;
        total := c.known;
        IF p.scan_done_at IS NULL AND EXISTS (SELECT 1 FROM pg_catalog.pg_class AS k WHERE k.oid = p.source_table) THEN
            -- the first backfill has not seen every row yet: count them
            BEGIN
                EXECUTE format('SELECT count(*) FROM %s', p.source_table) INTO total;
            EXCEPTION WHEN OTHERS THEN
                total := greatest(c.known, (SELECT k.reltuples::bigint FROM pg_catalog.pg_class AS k WHERE k.oid = p.source_table));
            END;
            total := greatest(total, c.known);
        END IF;
        name := p.name;
        source := p.source_table::text;
        input := p.input;
        destination := p.dest_table::text || '.' || quote_ident(p.dest_column);
        function_name := p.function_name;
        model_id := p.model_id;
        priority := p.priority;
        paused := p.paused;
        "rows" := total;
        done := c.done;
        pending := c.pending + greatest(0, total - c.known);
        processing := c.processing;
        failed := c.failed;
        stale := c.stale;
        coverage := CASE WHEN total = 0 THEN 100.0 ELSE round((100.0 * c.done / total)::numeric, 2)::double precision END;
        lag_seconds := CASE WHEN c.oldest IS NOT NULL THEN extract(epoch FROM clock_timestamp() - c.oldest)::double precision
                            WHEN total > c.known THEN extract(epoch FROM clock_timestamp() - p.scan_started_at)::double precision END;
        throughput := coalesce((SELECT sum(g.rows) FROM @extschema@.steadytext_pipeline_progress AS g
                                WHERE g.pipeline_id = p.pipeline_id AND g.at > now() - interval '60 seconds'), 0) / 60.0;
        backfilling := p.scanning;
        models := c.models;
        last_error := CASE WHEN p.blocked THEN p.last_error
                           WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class AS k WHERE k.oid = p.source_table)
                           THEN 'the source table was dropped: drop the pipeline' ELSE p.last_error END;
        created_at := p.created_at;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- 42704 unless `name` (NULL: any) is a pipeline the caller may see
-- (SECURITY DEFINER).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_change_check(name text, caller name DEFAULT current_user)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NOT NULL THEN
        PERFORM @extschema@._steadytext_pipeline_get('steadytext_pipeline_status', name, @extschema@._steadytext_caller(caller));
    END IF;
    RETURN true;
END;
$$;

-- One row per pipeline the caller may see (all, or the one named); columns
-- in docs/pipelines.md. 42704 for an unknown name.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_pipeline_status(name TEXT DEFAULT NULL)
RETURNS TABLE(name text, source text, input text, destination text, function_name text, model_id text,
              priority integer, paused boolean, "rows" bigint, done bigint, pending bigint, processing bigint,
              failed bigint, stale bigint, coverage double precision, lag_seconds double precision,
              throughput double precision, backfilling boolean, models jsonb, last_error text,
              created_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.* FROM @extschema@._steadytext_pipeline_change_check($1) AS c,
                    @extschema@._steadytext_pipeline_report($1) AS r
$$;

-- steadytext_pipeline_failures for `caller` (SECURITY DEFINER).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_failed(name text, caller name DEFAULT current_user)
RETURNS TABLE(pipeline text, row_key jsonb, error text, attempts integer, failed_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    who constant name := @extschema@._steadytext_caller(caller);
BEGIN
    IF name IS NOT NULL THEN
        PERFORM @extschema@._steadytext_pipeline_get('steadytext_pipeline_failures', name, who);
    END IF;
    RETURN QUERY
    SELECT p.name, r.row_key, r.error, r.attempts, r.done_at
    FROM @extschema@.steadytext_pipeline_rows AS r
    JOIN @extschema@.steadytext_pipelines AS p ON p.pipeline_id = r.pipeline_id
    WHERE r.status = 'failed' AND (_steadytext_pipeline_failed.name IS NULL OR p.name = _steadytext_pipeline_failed.name)
      AND (p.owner_role = who OR @extschema@._steadytext_sees_all(who))
    ORDER BY r.done_at DESC, p.name, r.row_key;
END;
$$;

-- The failed rows of the pipelines the caller may see (or of the one
-- named), newest first, with their errors.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_pipeline_failures(name TEXT DEFAULT NULL)
RETURNS TABLE(pipeline text, row_key jsonb, error text, attempts integer, failed_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM @extschema@._steadytext_pipeline_failed(name)
$$;


-- ===========================================================================
-- The worker's side (steadytext_worker; SECURITY DEFINER)
-- ===========================================================================

-- One step of pipeline `id`'s scan over its source in key order (the
-- backfill, a rerun after a change of model or parameters, the sweep): the
-- next `chunk` rows get a pending row each unless their value is current
-- (same input, model and version). Reads the source without locks; never
-- waits on a session for more than 100 ms (a row a session is marking right
-- now is that session's to mark). Returns false once past the last row.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_scan(id integer, chunk integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $$
DECLARE
    p @extschema@.steadytext_pipelines;
    keys jsonb[];
    hashes text[];
    k jsonb;
BEGIN
    SELECT * INTO p FROM @extschema@.steadytext_pipelines AS x WHERE x.pipeline_id = id FOR NO KEY UPDATE SKIP LOCKED;
    IF NOT FOUND OR NOT p.scanning THEN
        RETURN false;  -- another worker's step runs (or a change is being made): next time
    END IF;
    EXECUTE format('SELECT array_agg(s.row_key ORDER BY s.n), array_agg(s.input_hash ORDER BY s.n)
                    FROM %s._stxp_%s_scan($1, $2) WITH ORDINALITY AS s(row_key, input_hash, n)', '@extschema@', id)
        INTO keys, hashes USING p.scan_after, chunk;
    -- rows whose value is not current any more
    -- (each scanned key looked up by the primary key: a join let the planner
    -- walk every done row of the pipeline once per chunk key)
    WITH stale AS (SELECT r.row_key FROM unnest(keys, hashes) AS s(k, h)
                   CROSS JOIN LATERAL (SELECT x.row_key FROM @extschema@.steadytext_pipeline_rows AS x
                                       WHERE x.pipeline_id = id AND x.row_key = s.k AND x.status = 'done'
                                         AND (x.have_hash IS DISTINCT FROM s.h OR x.have_model IS DISTINCT FROM p.model_id
                                              OR x.have_version IS DISTINCT FROM p.version)
                                       FOR UPDATE SKIP LOCKED) AS r)
    UPDATE @extschema@.steadytext_pipeline_rows AS r SET status = 'pending', changed_at = now(), run_at = now()
    FROM stale WHERE r.pipeline_id = id AND r.row_key = stale.row_key;
    -- rows it has not seen (ON CONFLICT probes the primary key row by row; a
    -- NOT EXISTS let the planner hash all of the pipeline's rows per chunk)
    BEGIN
        INSERT INTO @extschema@.steadytext_pipeline_rows (pipeline_id, row_key)
        SELECT id, s.k FROM unnest(keys) AS s(k)
        ON CONFLICT DO NOTHING;
    EXCEPTION WHEN lock_not_available THEN
        -- a session inserting one of them has not committed: the others one by one
        FOREACH k IN ARRAY keys LOOP
            BEGIN
                INSERT INTO @extschema@.steadytext_pipeline_rows (pipeline_id, row_key) VALUES (id, k) ON CONFLICT DO NOTHING;
            EXCEPTION WHEN lock_not_available THEN
                NULL;
            END;
        END LOOP;
    END;
    IF coalesce(cardinality(keys), 0) < chunk THEN
        UPDATE @extschema@.steadytext_pipelines AS x SET scanning = false, scan_after = NULL, scan_done_at = now()
        WHERE x.pipeline_id = id;
        RETURN false;
    END IF;
    UPDATE @extschema@.steadytext_pipelines AS x SET scan_after = keys[cardinality(keys)] WHERE x.pipeline_id = id;
    RETURN true;
END;
$$;

-- A batch of one pipeline's pending rows for worker `worker_id` (columns in
-- docs/pipelines.md), at most `max_rows` (and the pipeline's batch_size),
-- marked 'processing' under a new claim. Pipelines by priority, then the
-- oldest pending change; one is passed over while a queue job of a served
-- function with at least its priority waits (interactive work first), while
-- paused or blocked, and unless the worker's model for its role (`models`:
-- {role: model id}) is the one the pipeline's values come from. A pipeline
-- whose role's published model changed recomputes in the background.
-- Advances the scan (backfill, rerun, sweep) when few rows are pending.
-- `vectors`: send the batch's embeddings as vectors
-- (_steadytext_pipeline_sends_vectors). A pipeline whose functions an older
-- version wrote gets them rewritten first.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_claim(worker_id text, max_rows integer, models jsonb,
                                                                 served text[] DEFAULT NULL)
RETURNS TABLE(pipeline_id integer, name text, function_name text, parameters jsonb, model_id text, dimensions integer,
              row_key jsonb, claim bigint, input text, input_hash text, cached text, vectors boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p @extschema@.steadytext_pipelines;
    role text;
    current_model text;
    chunk integer;
    keys jsonb[];
    claims bigint[];
    tids tid[];
    inputs text[];
    cache_keys text[];
    send_vectors boolean;
    write_fn text;
BEGIN
    -- the claim commits without waiting for its WAL to reach disk (see
    -- _steadytext_pipeline_write): lost in a crash, its rows are simply
    -- pending again, and the worker's write of them is refused
    PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
    FOR p IN
        SELECT x.* FROM @extschema@.steadytext_pipelines AS x
        WHERE NOT x.paused AND NOT x.blocked
          AND (served IS NULL OR x.function_name = ANY (served))
          AND (x.scanning
               OR (x.sweep_interval IS NOT NULL AND x.scan_done_at < now() - x.sweep_interval)
               OR x.model_id IS DISTINCT FROM @extschema@._steadytext_model_id(@extschema@._steadytext_model_role(x.function_name))
               OR EXISTS (SELECT 1 FROM @extschema@.steadytext_pipeline_rows AS r
                          WHERE r.pipeline_id = x.pipeline_id AND r.status = 'pending' AND r.run_at <= now()))
          AND NOT EXISTS (SELECT 1 FROM @extschema@.steadytext_queue AS q
                          WHERE q.status = 'pending' AND q.priority >= x.priority AND q.run_at <= now()
                            AND (served IS NULL OR q.function_name = ANY (served)))
          AND EXISTS (SELECT 1 FROM pg_catalog.pg_class AS k WHERE k.oid = x.source_table)
        ORDER BY x.priority DESC,
                 (SELECT min(r.changed_at) FROM @extschema@.steadytext_pipeline_rows AS r
                  WHERE r.pipeline_id = x.pipeline_id AND r.status = 'pending') NULLS LAST,
                 x.pipeline_id
    LOOP
        role := @extschema@._steadytext_model_role(p.function_name);
        current_model := @extschema@._steadytext_model_id(role);
        CONTINUE WHEN models ->> role IS DISTINCT FROM current_model;
        write_fn := format('%s._stxp_%s_write(jsonb[], text[], text[], real[], integer[], integer)', '@extschema@', p.pipeline_id);
        IF to_regprocedure(write_fn) IS NULL THEN
            -- written by 1.5.0: rewritten once, by the claim that locks the
            -- pipeline (another worker's passes it over meanwhile)
            CONTINUE WHEN NOT EXISTS (SELECT 1 FROM @extschema@.steadytext_pipelines AS y
                                      WHERE y.pipeline_id = p.pipeline_id FOR NO KEY UPDATE SKIP LOCKED);
            IF to_regprocedure(write_fn) IS NULL THEN
                PERFORM @extschema@._steadytext_pipeline_install(p.pipeline_id, false);
            END IF;
        END IF;
        IF p.model_id IS DISTINCT FROM current_model THEN
            -- the model changed: every value is recomputed in the background
            UPDATE @extschema@.steadytext_pipelines AS x
            SET model_id = current_model, scanning = true, scan_after = NULL, scan_started_at = now(), last_error = NULL
            WHERE x.pipeline_id = p.pipeline_id AND x.model_id = p.model_id
              AND x.pipeline_id IN (SELECT y.pipeline_id FROM @extschema@.steadytext_pipelines AS y
                                    WHERE y.pipeline_id = p.pipeline_id FOR NO KEY UPDATE SKIP LOCKED);
            CONTINUE WHEN NOT FOUND;
            p.model_id := current_model;
            p.scanning := true;
        END IF;
        IF NOT p.scanning AND p.sweep_interval IS NOT NULL AND p.scan_done_at < now() - p.sweep_interval THEN
            UPDATE @extschema@.steadytext_pipelines AS x SET scanning = true, scan_after = NULL, scan_started_at = now()
            WHERE x.pipeline_id = p.pipeline_id AND NOT x.scanning
              AND x.pipeline_id IN (SELECT y.pipeline_id FROM @extschema@.steadytext_pipelines AS y
                                    WHERE y.pipeline_id = p.pipeline_id FOR NO KEY UPDATE SKIP LOCKED);
            p.scanning := FOUND;
        END IF;
        IF p.scanning THEN
            chunk := greatest(4 * p.batch_size, 1000);
            -- keep about a chunk pending ahead of the workers
            IF (SELECT count(*) FROM (SELECT 1 FROM @extschema@.steadytext_pipeline_rows AS r
                                      WHERE r.pipeline_id = p.pipeline_id AND r.status = 'pending' LIMIT chunk) AS c) < chunk THEN
                PERFORM @extschema@._steadytext_pipeline_scan(p.pipeline_id, chunk);
            END IF;
        END IF;
        -- the rows locked are updated where they lie (their ctid, exact while
        -- locked; nothing else in the condition, or the planner, without
        -- statistics for a new pipeline, may prefer walking all of the
        -- pipeline's rows, once per claimed row when joining on the key)
        WITH c AS (SELECT r.ctid AS tid FROM @extschema@.steadytext_pipeline_rows AS r
                   WHERE r.pipeline_id = p.pipeline_id AND r.status = 'pending' AND r.run_at <= now()
                   ORDER BY r.changed_at
                   LIMIT least(max_rows, p.batch_size)
                   FOR UPDATE OF r SKIP LOCKED),
             u AS (UPDATE @extschema@.steadytext_pipeline_rows AS r
                   SET status = 'processing', claim = r.claim + 1, worker_id = _steadytext_pipeline_claim.worker_id
                   FROM c WHERE r.ctid = c.tid
                   RETURNING r.row_key, r.claim, r.changed_at, r.ctid AS tid)
        SELECT array_agg(u.row_key ORDER BY u.changed_at), array_agg(u.claim ORDER BY u.changed_at),
               array_agg(u.tid ORDER BY u.changed_at)
        INTO keys, claims, tids FROM u;
        CONTINUE WHEN keys IS NULL;
        -- the inputs, read once with the creator's rights, in the claim's order
        EXECUTE format($q$SELECT array_agg(s.input ORDER BY u.n)
                          FROM unnest($1::jsonb[]) WITH ORDINALITY AS u(k, n)
                          LEFT JOIN %s._stxp_%s_read($1) AS s ON s.row_key = u.k$q$, '@extschema@', p.pipeline_id)
            INTO inputs USING keys;
        IF p.use_cache THEN
            -- where each result is looked up and stored in the cache
            cache_keys := ARRAY(
                SELECT CASE WHEN x.input IS NOT NULL
                            THEN (@extschema@._steadytext_request_key(p.function_name,
                                      p.parameters || jsonb_build_object(@extschema@._steadytext_pipeline_input(p.function_name), x.input),
                                      p.owner_role)).cache_key END
                FROM unnest(inputs) WITH ORDINALITY AS x(input, n) ORDER BY x.n);
            -- the claimed rows where the claim left them (still locked)
            UPDATE @extschema@.steadytext_pipeline_rows AS r SET cache_key = c.key
            FROM unnest(tids, cache_keys) AS c(tid, key)
            WHERE r.ctid = c.tid AND c.key IS NOT NULL;
        END IF;
        send_vectors := coalesce(@extschema@._steadytext_pipeline_sends_vectors(p), false);
        RETURN QUERY
        SELECT p.pipeline_id, p.name, p.function_name, p.parameters, p.model_id, p.dimensions, u.k, u.c, u.i, md5(u.i),
               (SELECT e.result FROM @extschema@.steadytext_cache AS e WHERE e.cache_key = u.ck),
               send_vectors
        FROM unnest(keys, claims, inputs, coalesce(cache_keys, array_fill(NULL::text, ARRAY[cardinality(keys)])))
             WITH ORDINALITY AS u(k, c, i, ck, n)
        ORDER BY u.n;
        RETURN;
    END LOOP;
END;
$$;

-- Of a claim's rows (`row_keys`, `claims`) those still this worker's claim
-- but not among `taken` (the ones it could lock): a session holds them
-- locked. Recorded in steadytext_pipeline_giveback, for the reclaim to put
-- back to pending once free; returns their keys.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_held(id integer, worker_id text, row_keys jsonb[],
                                                                claims bigint[], taken jsonb[])
RETURNS jsonb[]
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH held AS (
        INSERT INTO @extschema@.steadytext_pipeline_giveback AS g (pipeline_id, row_key, claim)
        SELECT id, u.k, u.c FROM unnest(row_keys, claims) AS u(k, c)
        CROSS JOIN LATERAL (SELECT r.status FROM @extschema@.steadytext_pipeline_rows AS r
                            WHERE r.pipeline_id = id AND r.row_key = u.k AND r.claim = u.c
                              AND r.worker_id = _steadytext_pipeline_held.worker_id
                            LIMIT 1) AS r
        WHERE r.status = 'processing' AND u.k NOT IN (SELECT t.k FROM unnest(taken) AS t(k))
        ON CONFLICT (pipeline_id, row_key) DO UPDATE SET claim = excluded.claim
        RETURNING g.row_key)
    SELECT coalesce(array_agg(held.row_key), '{}') FROM held
$$;

-- The results of a batch (arrays in the claim's order): writes each into
-- the destination with the creator's rights and records the outcome; only
-- rows still under this claim are written. Returns how many rows ended
-- 'written', 'stale' (the input changed: pending again), 'busy' (a session
-- holds the row: pending again in a second), 'failed' (errors[i], or a
-- constraint or trigger of the destination), 'lost' (no longer this claim).
-- An embed pipeline's results may come as vectors instead of text
-- (_steadytext_pipeline_sends_vectors): `vectors`, every row's embedding one
-- after another (a one-dimensional real[], binary from the worker), and
-- `vector_starts`, where each row's begins in it (NULL: results[i] holds it,
-- or NULL); all of one size. 22023 for vectors that do not add up.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_write(pipeline_id integer, worker_id text, model_id text,
                                                                 row_keys jsonb[], claims bigint[], input_hashes text[],
                                                                 results text[], errors text[],
                                                                 vectors real[] DEFAULT NULL, vector_starts integer[] DEFAULT NULL)
RETURNS TABLE(outcome text, "rows" bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    id constant integer := _steadytext_pipeline_write.pipeline_id;
    p @extschema@.steadytext_pipelines;
    mine_k jsonb[];
    mine_v text[];
    mine_h text[];
    fail_k jsonb[];
    fail_e text[];
    busy_k jsonb[];
    out_k jsonb[];
    out_o text[];
    out_e text[];
    dims integer;
    mine_a integer[];
    mine_t tid[];
    fail_t tid[];
    vec_count bigint;
    vec_dims integer;
BEGIN
    -- The write commits without waiting for its WAL to reach disk
    -- (synchronous_commit off, this transaction only). Safe: a value and the
    -- bookkeeping that says it is current commit together, so a crash that
    -- loses this commit loses both, and the row is computed again (the same
    -- value: the engine is deterministic). The wait was most of a write's
    -- time at backfill rates; a user's own transactions keep their setting.
    PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
    SELECT * INTO p FROM @extschema@.steadytext_pipelines AS x WHERE x.pipeline_id = id;
    IF vector_starts IS NOT NULL THEN
        -- n vectors of one size, each where its start says, none overlapping
        vec_count := (SELECT count(*) FROM unnest(vector_starts) AS a WHERE a IS NOT NULL);
        vec_dims := cardinality(vectors) / nullif(vec_count, 0);
        IF (p.pipeline_id IS NOT NULL AND p.function_name <> 'embed') OR coalesce(array_ndims(vectors), 1) <> 1 OR array_lower(vectors, 1) <> 1
           OR cardinality(vector_starts) <> cardinality(row_keys)
           OR coalesce(cardinality(vectors), 0) <> coalesce(vec_dims, 0) * vec_count
           OR vec_dims = 0
           OR EXISTS (SELECT 1 FROM unnest(vector_starts) AS a
                      WHERE a IS NOT NULL AND (a < 1 OR (a - 1) % vec_dims <> 0 OR a + vec_dims - 1 > cardinality(vectors)))
           OR (SELECT count(DISTINCT a) <> count(a) FROM unnest(vector_starts) AS a) THEN
            RAISE EXCEPTION '_steadytext_pipeline_write: vectors and vector_starts do not hold one embedding of one size per row'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    -- this claim's rows, locked (a row a session is marking right now is
    -- not), and where they lie (ctid: the outcome below updates them there);
    -- the results stay out of the join (megabytes of vectors). Each row is
    -- looked up by its key alone, whatever the statistics say: a join let
    -- the planner of a new pipeline walk every row in flight once per row
    -- (LIMIT 1 keeps the status test out of the lookup, and with it the
    -- index of rows in flight).
    WITH u AS MATERIALIZED (SELECT * FROM unnest(row_keys, claims) WITH ORDINALITY AS u(k, c, n)),
         mine AS (SELECT u.n, l.tid FROM u
                  CROSS JOIN LATERAL (SELECT r.ctid AS tid, r.status FROM @extschema@.steadytext_pipeline_rows AS r
                                      WHERE r.pipeline_id = id AND r.row_key = u.k AND r.claim = u.c
                                        AND r.worker_id = _steadytext_pipeline_write.worker_id
                                      LIMIT 1 FOR UPDATE OF r SKIP LOCKED) AS l
                  WHERE l.status = 'processing'),
         m AS (SELECT x.k, x.h, x.v, x.e, x.a, x.n, mine.tid
               FROM unnest(row_keys, input_hashes, results, errors, vector_starts) WITH ORDINALITY AS x(k, h, v, e, a, n)
               JOIN mine ON mine.n = x.n)
    SELECT array_agg(m.k ORDER BY m.n) FILTER (WHERE m.e IS NULL), array_agg(m.v ORDER BY m.n) FILTER (WHERE m.e IS NULL),
           array_agg(m.h ORDER BY m.n) FILTER (WHERE m.e IS NULL), array_agg(m.a ORDER BY m.n) FILTER (WHERE m.e IS NULL),
           array_agg(m.k ORDER BY m.n) FILTER (WHERE m.e IS NOT NULL), array_agg(m.e ORDER BY m.n) FILTER (WHERE m.e IS NOT NULL),
           array_agg(m.tid ORDER BY m.n) FILTER (WHERE m.e IS NULL), array_agg(m.tid ORDER BY m.n) FILTER (WHERE m.e IS NOT NULL)
    INTO mine_k, mine_v, mine_h, mine_a, fail_k, fail_e, mine_t, fail_t FROM m;
    IF coalesce(cardinality(mine_k), 0) + coalesce(cardinality(fail_k), 0) < coalesce(cardinality(row_keys), 0) THEN
        busy_k := @extschema@._steadytext_pipeline_held(id, _steadytext_pipeline_write.worker_id, row_keys, claims,
                                                      coalesce(mine_k, '{}') || coalesce(fail_k, '{}'));
    END IF;
    IF p.pipeline_id IS NOT NULL AND mine_k IS NOT NULL THEN
        EXECUTE format('SELECT array_agg(w.row_key), array_agg(w.outcome), array_agg(w.error) FROM %s._stxp_%s_write($1, $2, $3, $4, $5, $6) AS w',
                       '@extschema@', id)
            INTO out_k, out_o, out_e USING mine_k, mine_h, mine_v, vectors, mine_a, vec_dims;
        -- an embedding's size, learnt from the first one written: the model's
        -- (checked at later creates) and, for a destination without a declared
        -- size (real[], jsonb), the pipeline's, so a model of another size is
        -- refused by the worker instead of mixing sizes in one column
        IF p.function_name = 'embed' AND (p.dimensions IS NULL OR NOT EXISTS (
               SELECT 1 FROM @extschema@.steadytext_config AS c WHERE c.key = 'dimensions.' || model_id)) THEN
            dims := coalesce(vec_dims, (SELECT cardinality(string_to_array(v, ',')) FROM unnest(mine_v) AS v WHERE v IS NOT NULL LIMIT 1));
            IF dims IS NOT NULL THEN
                INSERT INTO @extschema@.steadytext_config (key, value) VALUES ('dimensions.' || model_id, to_jsonb(dims))
                ON CONFLICT (key) DO NOTHING;
                UPDATE @extschema@.steadytext_pipelines AS x SET dimensions = dims
                WHERE x.pipeline_id IN (SELECT y.pipeline_id FROM @extschema@.steadytext_pipelines AS y
                                        WHERE y.pipeline_id = id AND y.dimensions IS NULL FOR NO KEY UPDATE SKIP LOCKED);
            END IF;
        END IF;
    END IF;
    out_k := coalesce(fail_k, '{}') || coalesce(out_k, '{}');
    out_o := array_fill('failed'::text, ARRAY[coalesce(cardinality(fail_k), 0)]) || coalesce(out_o, '{}');
    out_e := coalesce(fail_e, '{}') || coalesce(out_e, '{}');
    IF p.use_cache AND 'written' = ANY (out_o) THEN
        INSERT INTO @extschema@.steadytext_cache (cache_key, function_name, model_id, parameters, result)
        SELECT r.cache_key, p.function_name, _steadytext_pipeline_write.model_id, p.parameters, x.v
        FROM unnest(out_k, out_o) AS o(k, o)
        JOIN unnest(mine_k, mine_v, mine_t) AS x(k, v, tid) ON x.k = o.k
        JOIN @extschema@.steadytext_pipeline_rows AS r ON r.ctid = x.tid
        WHERE o.o = 'written' AND r.cache_key IS NOT NULL AND x.v IS NOT NULL
        ON CONFLICT (cache_key) DO NOTHING;
    END IF;
    -- each row's outcome, where it was locked (a row changed since, by a
    -- trigger of this very write, is not there any more: its change stands)
    WITH t AS (SELECT * FROM unnest(coalesce(mine_k, '{}') || coalesce(fail_k, '{}'), coalesce(mine_t, '{}') || coalesce(fail_t, '{}'),
                                    coalesce(mine_h, '{}') || array_fill(NULL::text, ARRAY[coalesce(cardinality(fail_k), 0)])) AS t(k, tid, h)),
         o AS (SELECT o.o, o.e, t.tid, t.h FROM unnest(out_k, out_o, out_e) AS o(k, o, e) JOIN t ON t.k = o.k),
         gone AS (DELETE FROM @extschema@.steadytext_pipeline_rows AS r USING o
                  WHERE r.ctid = o.tid AND o.o = 'missing')
    UPDATE @extschema@.steadytext_pipeline_rows AS r SET
        status = CASE o.o WHEN 'written' THEN 'done' WHEN 'failed' THEN 'failed' ELSE 'pending' END,
        worker_id = NULL,
        have_hash = CASE WHEN o.o = 'written' THEN o.h ELSE r.have_hash END,
        have_model = CASE WHEN o.o = 'written' THEN _steadytext_pipeline_write.model_id ELSE r.have_model END,
        have_version = CASE WHEN o.o = 'written' THEN p.version ELSE r.have_version END,
        done_at = CASE WHEN o.o IN ('written', 'failed') THEN now() ELSE r.done_at END,
        error = CASE WHEN o.o = 'failed' THEN o.e END,
        attempts = CASE WHEN o.o = 'failed' THEN r.attempts + 1 WHEN o.o = 'written' THEN 0 ELSE r.attempts END,
        busy = CASE WHEN o.o = 'busy' THEN r.busy + 1 ELSE 0 END,
        -- a row a session holds: again in 1 s, 2 s, 4 s ... at most a minute
        run_at = CASE WHEN o.o = 'busy' THEN now() + make_interval(secs => least(60, 2 ^ least(r.busy, 6))) ELSE now() END,
        changed_at = CASE WHEN o.o = 'stale' THEN now() ELSE r.changed_at END
    FROM o
    WHERE r.ctid = o.tid AND o.o <> 'missing';
    IF 'written' = ANY (out_o) THEN
        INSERT INTO @extschema@.steadytext_pipeline_progress (pipeline_id, rows)
        VALUES (id, (SELECT count(*) FROM unnest(out_o) AS o WHERE o = 'written'));
        IF random() < 0.02 THEN
            DELETE FROM @extschema@.steadytext_pipeline_progress AS g WHERE g.at < now() - interval '10 minutes';
        END IF;
    END IF;
    -- 'busy' also counts the rows a session held locked (given back later by
    -- the reclaim); 'lost': sent, but no longer this claim (or the row is gone)
    RETURN QUERY
    SELECT x.o, CASE WHEN x.o = 'lost'
                     THEN coalesce(cardinality(row_keys), 0) - cardinality(out_k) - coalesce(cardinality(busy_k), 0)
                          + (SELECT count(*) FROM unnest(out_o) AS y WHERE y = 'missing')
                     WHEN x.o = 'busy'
                     THEN coalesce(cardinality(busy_k), 0) + (SELECT count(*) FROM unnest(out_o) AS y WHERE y = x.o)
                     ELSE (SELECT count(*) FROM unnest(out_o) AS y WHERE y = x.o) END
    FROM unnest(ARRAY['written', 'stale', 'busy', 'failed', 'lost']) AS x(o);
END;
$$;

-- A batch the worker gives back whole (the engine failed, the worker
-- stops): its rows pending again after `retry_in_seconds`; an error counts
-- an attempt (the fifth fails the rows with it), NULL counts none.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_release(pipeline_id integer, worker_id text, row_keys jsonb[],
                                                                   claims bigint[], error text,
                                                                   retry_in_seconds double precision)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- each row looked up by its key, locked, and updated where it lies (as
    -- in _steadytext_pipeline_write)
    WITH u AS (SELECT * FROM unnest(row_keys, claims) AS u(k, c)),
         mine AS (SELECT l.row_key, l.tid FROM u
                  CROSS JOIN LATERAL (SELECT r.row_key, r.ctid AS tid, r.status FROM @extschema@.steadytext_pipeline_rows AS r
                                      WHERE r.pipeline_id = _steadytext_pipeline_release.pipeline_id AND r.row_key = u.k
                                        AND r.claim = u.c AND r.worker_id = _steadytext_pipeline_release.worker_id
                                      LIMIT 1 FOR UPDATE OF r SKIP LOCKED) AS l
                  WHERE l.status = 'processing'),
         -- rows a session holds locked: given back by the reclaim
         held AS (SELECT @extschema@._steadytext_pipeline_held(_steadytext_pipeline_release.pipeline_id,
                                                                _steadytext_pipeline_release.worker_id, row_keys, claims,
                                                                (SELECT coalesce(array_agg(mine.row_key), '{}') FROM mine))),
         done AS (UPDATE @extschema@.steadytext_pipeline_rows AS r SET
                      attempts = r.attempts + CASE WHEN _steadytext_pipeline_release.error IS NULL THEN 0 ELSE 1 END,
                      status = CASE WHEN _steadytext_pipeline_release.error IS NOT NULL AND r.attempts + 1 >= 5
                                    THEN 'failed' ELSE 'pending' END,
                      error = coalesce(_steadytext_pipeline_release.error, r.error),
                      done_at = CASE WHEN _steadytext_pipeline_release.error IS NOT NULL AND r.attempts + 1 >= 5
                                     THEN now() ELSE r.done_at END,
                      worker_id = NULL,
                      run_at = now() + make_interval(secs => greatest(coalesce(_steadytext_pipeline_release.retry_in_seconds, 0), 0))
                  FROM mine WHERE r.ctid = mine.tid
                  RETURNING 1)
    SELECT count(*) FROM done, held
$$;

-- The pipeline cannot run on this worker's model (its vectors do not fit
-- the destination): the batch goes back to pending, and the pipeline stops
-- with `error` as last_error until steadytext_pipeline_resume (or a drop).
-- The destination keeps its values.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_refuse(pipeline_id integer, worker_id text, row_keys jsonb[],
                                                                  claims bigint[], error text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_pipeline_release(pipeline_id, worker_id, row_keys, claims, NULL, 0);
    UPDATE @extschema@.steadytext_pipelines AS x SET blocked = true, last_error = error
    WHERE x.pipeline_id = _steadytext_pipeline_refuse.pipeline_id;
$$;

-- Rows held by workers that are gone (stopped, dead, past their heartbeat
-- timeout, or unknown), and rows a worker could not give back because a
-- session held them (steadytext_pipeline_giveback), back to pending once
-- free; returns how many. `self`: the worker running this pass, whose own
-- rows it never takes for a late heartbeat (the process is alive; as the
-- queue's reclaim); `restart_of`: a worker id whose earlier process this
-- one replaces (a start), whose rows are all taken back.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_reclaim(self text DEFAULT NULL, restart_of text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    -- given-back rows whose claim ended meanwhile (the session's change made
    -- them pending, or they were written, deleted, claimed again) are done with
    DELETE FROM @extschema@.steadytext_pipeline_giveback AS g
    WHERE NOT EXISTS (SELECT 1 FROM @extschema@.steadytext_pipeline_rows AS r
                      WHERE r.pipeline_id = g.pipeline_id AND r.row_key = g.row_key AND r.claim = g.claim
                        AND r.status = 'processing');
    WITH lost AS (SELECT r.pipeline_id, r.row_key FROM @extschema@.steadytext_pipeline_rows AS r
                  LEFT JOIN @extschema@.steadytext_workers AS w ON w.worker_id = r.worker_id
                  LEFT JOIN @extschema@.steadytext_pipeline_giveback AS g
                    ON g.pipeline_id = r.pipeline_id AND g.row_key = r.row_key AND g.claim = r.claim
                  WHERE r.status = 'processing'
                    AND (g.claim IS NOT NULL OR r.worker_id = restart_of
                         OR (r.worker_id IS DISTINCT FROM self
                             AND (w.worker_id IS NULL OR w.status IN ('stopped', 'dead')
                                  OR @extschema@._steadytext_heartbeat_lost(w.last_heartbeat, w.heartbeat_timeout_seconds, now()))))
                  FOR UPDATE OF r SKIP LOCKED),
         back AS (UPDATE @extschema@.steadytext_pipeline_rows AS r SET status = 'pending', worker_id = NULL, run_at = now()
                  FROM lost WHERE r.pipeline_id = lost.pipeline_id AND r.row_key = lost.row_key
                  RETURNING r.pipeline_id, r.row_key),
         done AS (DELETE FROM @extschema@.steadytext_pipeline_giveback AS g USING back
                  WHERE g.pipeline_id = back.pipeline_id AND g.row_key = back.row_key)
    SELECT count(*) INTO n FROM back;
    RETURN n;
END;
$$;

-- ---------------------------------------------------------------------------
-- sql/src/50-async-functions.sql
-- ---------------------------------------------------------------------------
-- The async functions: generation, embeddings, structured, batch, rerank.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- steadytext_<name>_async and steadytext_<name>_batch_async
-- ===========================================================================
-- Every enqueue function hands its arguments, as jsonb keyed by argument
-- name, to a SECURITY DEFINER helper that validates all of them before
-- writing anything (_steadytext_validate: one validation path per function):
-- NULL -> 22004, bad value -> 22023, over a limit -> 54000 (see
-- steadytext_limits()); the message names the function and the argument.

-- The functions themselves are written from the job-type catalog
-- (src/jobTypes.ts) by the build, in catalog order:
-- @job-types async-functions

-- Returns the new request's id. Raises 22004/22023/54000 for bad arguments,
-- 54000 when steadytext.max_queue_size is reached.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_async(
    prompt TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_enqueue('steadytext_generate_async', 'generate',
        jsonb_build_object('prompt', steadytext_generate_async.prompt, 'max_tokens', steadytext_generate_async.max_tokens, 'use_cache', steadytext_generate_async.use_cache, 'seed', steadytext_generate_async.seed),
        steadytext_generate_async.priority)
$$;

-- Returns one request id per prompt, in prompt order ('{}' for an empty
-- array); the requests share one batch_id. Every prompt is validated before
-- anything is written: NULL array or prompt -> 22004, empty prompt -> 22023,
-- more than max_batch_items or a prompt over max_prompt_bytes -> 54000.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_batch_async(
    prompts TEXT[],
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID[]
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_enqueue_batch('steadytext_generate_batch_async', 'generate',
        jsonb_build_object('max_tokens', steadytext_generate_batch_async.max_tokens, 'use_cache', steadytext_generate_batch_async.use_cache, 'seed', steadytext_generate_batch_async.seed),
        steadytext_generate_batch_async.prompts, steadytext_generate_batch_async.priority)
$$;

-- Returns the new request's id (result: a JSON document matching schema).
-- Raises 0A000 for $ref, 54000 for a too big / too deep schema, 22023 for a
-- malformed one, and as steadytext_generate_async for the rest.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_json_async(
    prompt TEXT,
    schema JSONB,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_enqueue('steadytext_generate_json_async', 'generate_json',
        jsonb_build_object('prompt', steadytext_generate_json_async.prompt, 'schema', steadytext_generate_json_async.schema, 'max_tokens', steadytext_generate_json_async.max_tokens, 'use_cache', steadytext_generate_json_async.use_cache, 'seed', steadytext_generate_json_async.seed),
        steadytext_generate_json_async.priority)
$$;

-- Returns the new request's id (result: text matching pattern in full).
-- Raises 22023 for a malformed pattern or a max_tokens below its shortest
-- match, 0A000 for constructs outside the supported dialect (backreferences,
-- lookaround, word boundaries, lazy quantifiers, \p, inner anchors; see
-- docs/limits.md), 54000 for a pattern too big, and as
-- steadytext_generate_async.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_regex_async(
    prompt TEXT,
    pattern TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_enqueue('steadytext_generate_regex_async', 'generate_regex',
        jsonb_build_object('prompt', steadytext_generate_regex_async.prompt, 'pattern', steadytext_generate_regex_async.pattern, 'max_tokens', steadytext_generate_regex_async.max_tokens, 'use_cache', steadytext_generate_regex_async.use_cache, 'seed', steadytext_generate_regex_async.seed),
        steadytext_generate_regex_async.priority)
$$;

-- Returns the new request's id (result: exactly one of choices). Raises 22004
-- for NULL choices or a NULL choice, 22023 for none / an empty or duplicate
-- choice, 54000 for more than max_choices, and as steadytext_generate_async.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_choice_async(
    prompt TEXT,
    choices TEXT[],
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_enqueue('steadytext_generate_choice_async', 'generate_choice',
        jsonb_build_object('prompt', steadytext_generate_choice_async.prompt, 'choices', steadytext_generate_choice_async.choices, 'max_tokens', steadytext_generate_choice_async.max_tokens, 'use_cache', steadytext_generate_choice_async.use_cache, 'seed', steadytext_generate_choice_async.seed),
        steadytext_generate_choice_async.priority)
$$;

-- Returns the new request's id (result: pgvector text '[...]'). Raises
-- 22004/22023/54000 for bad arguments or a full queue.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_embed_async(
    text_input TEXT,
    use_cache BOOLEAN DEFAULT true,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_enqueue('steadytext_embed_async', 'embed',
        jsonb_build_object('text_input', steadytext_embed_async.text_input, 'use_cache', steadytext_embed_async.use_cache),
        steadytext_embed_async.priority)
$$;

-- Returns one embed request id per text, in order ('{}' for an empty array);
-- shared batch_id. Raises as steadytext_generate_batch_async (argument
-- texts).
CREATE OR REPLACE FUNCTION @extschema@.steadytext_embed_batch_async(
    texts TEXT[],
    use_cache BOOLEAN DEFAULT true,
    priority INTEGER DEFAULT 0
) RETURNS UUID[]
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_enqueue_batch('steadytext_embed_batch_async', 'embed',
        jsonb_build_object('use_cache', steadytext_embed_batch_async.use_cache),
        steadytext_embed_batch_async.texts, steadytext_embed_batch_async.priority)
$$;

-- Returns the new request's id (result: JSON [{"document","score","index"}],
-- best first). Raises 22004 for NULL documents or a NULL document, 22023 for
-- no documents, 54000 for more than max_rerank_documents or one over
-- max_prompt_bytes, and 22004/22023/54000 for query/task/seed/priority.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_rerank_async(
    query TEXT,
    documents TEXT[],
    task TEXT DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_enqueue('steadytext_rerank_async', 'rerank',
        jsonb_build_object('query', steadytext_rerank_async.query, 'documents', steadytext_rerank_async.documents, 'task', steadytext_rerank_async.task, 'use_cache', steadytext_rerank_async.use_cache, 'seed', steadytext_rerank_async.seed),
        steadytext_rerank_async.priority)
$$;

-- ---------------------------------------------------------------------------
-- sql/src/60-results.sql
-- ---------------------------------------------------------------------------
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

-- ---------------------------------------------------------------------------
-- sql/src/70-handoff.sql
-- ---------------------------------------------------------------------------
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

-- ---------------------------------------------------------------------------
-- sql/src/80-sync.sql
-- ---------------------------------------------------------------------------
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

-- The generated text. Raises as steadytext_generate_async for bad arguments,
-- and as described above.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate(
    prompt TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_sync('steadytext_generate', 'generate',
        jsonb_build_object('prompt', steadytext_generate.prompt, 'max_tokens', steadytext_generate.max_tokens, 'use_cache', steadytext_generate.use_cache, 'seed', steadytext_generate.seed))
$$;

-- The JSON document (text) matching schema. Raises as
-- steadytext_generate_json_async for bad arguments.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_json(
    prompt TEXT,
    schema JSONB,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_sync('steadytext_generate_json', 'generate_json',
        jsonb_build_object('prompt', steadytext_generate_json.prompt, 'schema', steadytext_generate_json.schema, 'max_tokens', steadytext_generate_json.max_tokens, 'use_cache', steadytext_generate_json.use_cache, 'seed', steadytext_generate_json.seed))
$$;

-- Text matching pattern in full. Raises as steadytext_generate_regex_async
-- for bad arguments.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_regex(
    prompt TEXT,
    pattern TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_sync('steadytext_generate_regex', 'generate_regex',
        jsonb_build_object('prompt', steadytext_generate_regex.prompt, 'pattern', steadytext_generate_regex.pattern, 'max_tokens', steadytext_generate_regex.max_tokens, 'use_cache', steadytext_generate_regex.use_cache, 'seed', steadytext_generate_regex.seed))
$$;

-- Exactly one of choices. Raises as steadytext_generate_choice_async for bad
-- arguments.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_choice(
    prompt TEXT,
    choices TEXT[],
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._steadytext_sync('steadytext_generate_choice', 'generate_choice',
        jsonb_build_object('prompt', steadytext_generate_choice.prompt, 'choices', steadytext_generate_choice.choices, 'max_tokens', steadytext_generate_choice.max_tokens, 'use_cache', steadytext_generate_choice.use_cache, 'seed', steadytext_generate_choice.seed))
$$;

-- The L2-normalised embedding as real[]. With pgvector installed,
-- steadytext_embed(...)::vector converts it (pgvector's real[] -> vector
-- cast). Raises as steadytext_embed_async for bad arguments.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_embed(
    text_input TEXT,
    use_cache BOOLEAN DEFAULT true
) RETURNS real[]
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT translate(@extschema@._steadytext_sync('steadytext_embed', 'embed',
        jsonb_build_object('text_input', steadytext_embed.text_input, 'use_cache', steadytext_embed.use_cache)), '[]', '{}')::real[]
$$;

-- One row per document, best first: (document, score). Raises as
-- steadytext_rerank_async for bad arguments.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_rerank(
    query TEXT,
    documents TEXT[],
    task TEXT DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TABLE(document text, score double precision)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.value ->> 'document', (e.value ->> 'score')::double precision
    FROM jsonb_array_elements((@extschema@._steadytext_sync('steadytext_rerank', 'rerank',
        jsonb_build_object('query', steadytext_rerank.query, 'documents', steadytext_rerank.documents, 'task', steadytext_rerank.task, 'use_cache', steadytext_rerank.use_cache, 'seed', steadytext_rerank.seed)))::jsonb) WITH ORDINALITY AS e(value, ord)
    ORDER BY e.ord
$$;

-- ---------------------------------------------------------------------------
-- sql/src/90-monitoring-and-cache.sql
-- ---------------------------------------------------------------------------
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

-- ---------------------------------------------------------------------------
-- sql/src/92-retention.sql
-- ---------------------------------------------------------------------------
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

-- ---------------------------------------------------------------------------
-- sql/src/99-grants.sql
-- ---------------------------------------------------------------------------
-- Privileges on the schema, tables and functions.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).
-- Each privilege is revoked from the four roles first and granted again, so
-- an upgraded database ends with exactly the privileges of a fresh install.

REVOKE ALL ON @extschema@.steadytext_queue, @extschema@.steadytext_cache, @extschema@.steadytext_workers,
              @extschema@.steadytext_config, @extschema@.steadytext_dead_letter_queue,
              @extschema@.steadytext_migrations, @extschema@.steadytext_cache_hits,
              @extschema@.steadytext_pipelines, @extschema@.steadytext_pipeline_rows, @extschema@.steadytext_pipeline_progress,
              @extschema@.steadytext_pipeline_giveback
    FROM PUBLIC, steadytext_user, steadytext_admin, steadytext_worker, steadytext_handoff;
REVOKE ALL ON SEQUENCE @extschema@.steadytext_pipelines_pipeline_id_seq
    FROM PUBLIC, steadytext_user, steadytext_admin, steadytext_worker, steadytext_handoff;
GRANT USAGE ON SCHEMA @extschema@ TO steadytext_user, steadytext_admin, steadytext_worker, steadytext_handoff;
GRANT SELECT ON @extschema@.steadytext_queue, @extschema@.steadytext_workers TO steadytext_user;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON @extschema@.steadytext_queue, @extschema@.steadytext_cache, @extschema@.steadytext_workers,
       @extschema@.steadytext_config, @extschema@.steadytext_dead_letter_queue
    TO steadytext_admin;
GRANT SELECT ON @extschema@.steadytext_migrations TO steadytext_admin, steadytext_worker;
-- Pipelines (docs/pipelines.md): a role reads its own pipelines, and its
-- pipelines' triggers (which run as it) mark its own pipelines' rows; row-
-- level security keeps it to those. Everything else goes through the
-- functions.
GRANT SELECT ON @extschema@.steadytext_pipelines TO steadytext_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON @extschema@.steadytext_pipeline_rows TO steadytext_user;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON @extschema@.steadytext_pipelines, @extschema@.steadytext_pipeline_rows, @extschema@.steadytext_pipeline_progress,
       @extschema@.steadytext_pipeline_giveback
    TO steadytext_admin;
GRANT USAGE ON SEQUENCE @extschema@.steadytext_pipelines_pipeline_id_seq TO steadytext_admin;  -- the worker checks the schema version at start
-- The worker updates only the columns of a job's life (claim, start,
-- outcome, retry); never what a request is (function, parameters, owner,
-- priority, created_at, cache key), so it cannot forge a request nor make one
-- look old enough for retention to delete.
GRANT SELECT ON @extschema@.steadytext_queue TO steadytext_worker;
GRANT UPDATE (status, result, error, started_at, completed_at, failed_at, retry_count, max_retries, worker_id,
              run_at, attempt)
    ON @extschema@.steadytext_queue TO steadytext_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON @extschema@.steadytext_cache TO steadytext_worker;
GRANT SELECT, INSERT, UPDATE ON @extschema@.steadytext_workers TO steadytext_worker;
-- steadytext_worker: nothing on steadytext_config (it holds the hand-off's
-- password); model ids go through _steadytext_publish_model_ids.
-- steadytext_handoff: no table at all.

-- Functions: nothing for PUBLIC. steadytext_admin: all. steadytext_user:
-- all but the admin-only ones (clearing/evicting the shared cache, result
-- retention (92-retention.sql), the hand-off's connection string and setup) and the helpers only SECURITY
-- DEFINER functions, triggers, workers and the hand-off login call.
-- steadytext_worker: what the worker calls. steadytext_handoff: the three
-- functions the hand-off's autonomous session calls, nothing else.
DO $$
DECLARE
    f record;
    not_for_user constant text[] := ARRAY[
        'steadytext_cache_clear', 'steadytext_cache_evict', 'steadytext_cleanup_results', 'steadytext_dblink_connstr',
        'steadytext_setup_handoff',
        '_steadytext_model_id', '_steadytext_check_queue_size', '_steadytext_scoped_cache_key', '_steadytext_request_key',
        '_steadytext_quota_key', '_steadytext_quota_announced', '_steadytext_quota_inflight', '_steadytext_quota_reserve', '_steadytext_queued', '_steadytext_cache_fold',
        '_steadytext_scope_key', '_steadytext_cache_scope',
        '_steadytext_queue_stamp', '_steadytext_queue_notify_completed', '_steadytext_publish_model_ids',
        '_steadytext_lock_request',
        '_steadytext_handoff_insert', '_steadytext_handoff_status', '_steadytext_handoff_cancel',
        '_steadytext_pipeline_install', '_steadytext_pipeline_uninstall', '_steadytext_pipeline_scan', '_steadytext_pipeline_held',
        '_steadytext_pipeline_claim', '_steadytext_pipeline_write', '_steadytext_pipeline_release',
        '_steadytext_pipeline_refuse', '_steadytext_pipeline_reclaim'];
    for_worker constant text[] := ARRAY[
        '_steadytext_pipeline_claim', '_steadytext_pipeline_write', '_steadytext_pipeline_release',
        '_steadytext_pipeline_refuse', '_steadytext_pipeline_reclaim', 'steadytext_pipeline_status',
        '_steadytext_pipeline_report', '_steadytext_pipeline_change_check', 'steadytext_pipeline_failures',
        '_steadytext_pipeline_failed', '_steadytext_model_role',
        'steadytext_cache_evict', 'steadytext_cleanup_results', 'steadytext_limits', '_steadytext_limit', '_steadytext_limit_defaults',
        '_steadytext_is_operator', '_steadytext_operator_guc', 'steadytext_worker_status', 'steadytext_queue_stats',
        'steadytext_cache_stats', '_steadytext_publish_model_ids', '_steadytext_heartbeat_lost', '_steadytext_cache_fold'];
    for_handoff constant text[] := ARRAY[
        '_steadytext_handoff_insert', '_steadytext_handoff_status', '_steadytext_handoff_cancel'];
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig, p.proname AS name FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = '@extschema@'::regnamespace
          AND (p.proname LIKE 'steadytext\_%' OR p.proname LIKE '\_steadytext\_%')
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, steadytext_user, steadytext_admin, steadytext_worker, steadytext_handoff', f.sig);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_admin', f.sig);
        IF NOT f.name = ANY (not_for_user) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_user', f.sig);
        END IF;
        IF f.name = ANY (for_worker) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_worker', f.sig);
        END IF;
        IF f.name = ANY (for_handoff) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_handoff', f.sig);
        END IF;
    END LOOP;
END;
$$;
