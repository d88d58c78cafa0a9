-- pg_steadytext 1.4.0: SteadyText's async AI functions for PostgreSQL.
-- Built by `npm run build:sql` from sql/src/ (do not edit; edit the sources).
-- Installed by `CREATE EXTENSION pg_steadytext` or by `steadytext migrate`
-- (which binds @extschema@ and drops the guard line below).
\echo Use "CREATE EXTENSION pg_steadytext" to load this file. \quit

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
-- sql/src/10-tables.sql
-- ---------------------------------------------------------------------------
-- Tables, indexes and row-level security policies.
-- @install-only: runs on a fresh install only; an upgrade changes these
-- objects in its hand-written part (sql/src/upgrades/).

-- ===========================================================================
-- Tables
-- ===========================================================================

-- Versions applied by `steadytext migrate` (empty under CREATE EXTENSION,
-- where pg_extension records the version).
CREATE TABLE steadytext_migrations (
    version    text PRIMARY KEY,
    script     text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The queue: one row per request. Columns the spec's queries use come first.
CREATE TABLE steadytext_queue (
    request_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    function_name   text NOT NULL
        CHECK (function_name IN ('generate', 'generate_json', 'generate_regex',
                                 'generate_choice', 'embed', 'rerank')),
    -- every SQL argument, defaults filled in, keyed by the argument's name
    parameters      jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    priority        integer NOT NULL DEFAULT 0,   -- higher runs first
    result          text,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    completed_at    timestamptz,                  -- set on every terminal state
    failed_at       timestamptz,
    retry_count     integer NOT NULL DEFAULT 0,   -- retries already made
    max_retries     integer,                      -- NULL: the worker's STEADYTEXT_WORKER_MAX_RETRIES
    worker_id       text,                         -- worker holding / last holding the job
    batch_id        uuid,                         -- shared by the rows of one *_batch_async call
    -- internals
    batch_index     integer,                      -- position within the batch (0-based)
    run_at          timestamptz NOT NULL DEFAULT now(),  -- not claimable before (retry backoff)
    attempt         integer NOT NULL DEFAULT 0,   -- claim counter; a completion must name the claim it ends
    timeout_seconds integer,                      -- NULL: the worker's STEADYTEXT_WORKER_TIMEOUT
    cache_key       text,                         -- steadytext_cache key, computed at enqueue
    model_id        text,                         -- model the cache key was computed for
    owner_role      name NOT NULL DEFAULT current_user,
    handoff_of      uuid,                         -- request-response hand-off: the caller's own uncommitted request
    CHECK (retry_count >= 0),
    CHECK (timeout_seconds IS NULL OR timeout_seconds > 0)
);

-- Claim order: priority desc, then age, over pending rows only.
CREATE INDEX steadytext_queue_claim_idx
    ON steadytext_queue (priority DESC, created_at, request_id)
    WHERE status = 'pending';
-- Reclaim and the spec's "stuck processing" queries.
CREATE INDEX steadytext_queue_processing_idx
    ON steadytext_queue (worker_id, started_at)
    WHERE status = 'processing';
-- Monitoring: per status and age (queue_stats, queue_health, dead letters).
CREATE INDEX steadytext_queue_status_created_idx ON steadytext_queue (status, created_at);
CREATE INDEX steadytext_queue_completed_at_idx ON steadytext_queue (completed_at)
    WHERE completed_at IS NOT NULL;
CREATE INDEX steadytext_queue_batch_idx ON steadytext_queue (batch_id, batch_index)
    WHERE batch_id IS NOT NULL;

-- Results by (function, model, every output-changing parameter).
CREATE TABLE steadytext_cache (
    cache_key     text PRIMARY KEY,
    function_name text NOT NULL,
    model_id      text NOT NULL,
    parameters    jsonb NOT NULL,   -- the parameters the key was computed from
    result        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_accessed timestamptz NOT NULL DEFAULT now(),
    access_count  bigint NOT NULL DEFAULT 1
);
CREATE INDEX steadytext_cache_last_accessed_idx ON steadytext_cache (last_accessed);

-- Cache hits not yet counted into steadytext_cache (1.4.0): an enqueue or a
-- synchronous call answered from the cache appends a row here instead of
-- updating the entry, so no caller's open transaction ever holds a lock on a
-- cache entry that another session or a worker needs. Folded into
-- access_count / last_accessed by _steadytext_cache_fold() (the workers'
-- eviction timer; steadytext_cache_stats() counts the rest).
CREATE TABLE steadytext_cache_hits (
    cache_key text NOT NULL,
    hits      bigint NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);

-- Live and recently dead workers; heartbeats drive the reclaim of jobs.
CREATE TABLE steadytext_workers (
    worker_id         text PRIMARY KEY,
    host              text NOT NULL,
    pid               integer NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    last_heartbeat    timestamptz NOT NULL DEFAULT now(),
    status            text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'stopping', 'stopped', 'dead')),
    concurrency       integer NOT NULL DEFAULT 1,
    heartbeat_timeout_seconds integer NOT NULL DEFAULT 15,
    jobs_completed    bigint NOT NULL DEFAULT 0,
    jobs_failed       bigint NOT NULL DEFAULT 0,
    current_jobs      integer NOT NULL DEFAULT 0,
    version           text,
    models            jsonb,           -- model id per role
    served_functions  text[]           -- job types it claims (its engine refuses the others); NULL: every type
);

-- Settings shared by SQL and workers (model ids for cache keys, limits).
CREATE TABLE steadytext_config (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Permanently failed requests, exactly as the spec defines the table.
CREATE TABLE steadytext_dead_letter_queue (
    LIKE steadytext_queue INCLUDING ALL,
    moved_at TIMESTAMP DEFAULT NOW(),
    failure_reason TEXT
);

-- The per-role quota (steadytext.max_queue_per_role): one role's live rows.
-- (After the dead letter table, which copies the queue's indexes as 1.0.0 had them.)
CREATE INDEX steadytext_queue_owner_active_idx ON steadytext_queue (owner_role)
    WHERE status IN ('pending', 'processing');


-- Row-level security: a role sees (and, through the functions, waits on,
-- cancels and retries) only the requests it owns; admins and workers all.
-- The owner of the table and superusers are not subject to it.
ALTER TABLE steadytext_queue ENABLE ROW LEVEL SECURITY;
CREATE POLICY steadytext_queue_own ON steadytext_queue
    FOR SELECT USING (owner_role = current_user);
CREATE POLICY steadytext_queue_all ON steadytext_queue
    TO steadytext_admin, steadytext_worker USING (true) WITH CHECK (true);

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

-- The argument `arg` of `parameters` as text; NULL if absent or JSON null;
-- 22023 if it is not a JSON string.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_param_text(fn text, parameters jsonb, arg text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v constant jsonb := parameters -> arg;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    ELSIF jsonb_typeof(v) <> 'string' THEN
        RAISE EXCEPTION '%: % must be text, got %', fn, arg, jsonb_typeof(v)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v #>> '{}';
END;
$$;

-- The argument `arg` as an integer (int4); NULL if absent or JSON null;
-- 22023 if it is not a JSON integer in range.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_param_int(fn text, parameters jsonb, arg text)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v constant jsonb := parameters -> arg;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    ELSIF jsonb_typeof(v) <> 'number' OR v::text !~ '^-?[0-9]{1,10}$'
          OR v::text::bigint NOT BETWEEN -2147483648 AND 2147483647 THEN
        RAISE EXCEPTION '%: % must be an integer, got %', fn, arg, left(v::text, 40)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v::text::integer;
END;
$$;

-- The argument `arg` as a boolean; NULL if absent or JSON null; 22023 if it
-- is not a JSON boolean.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_param_bool(fn text, parameters jsonb, arg text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v constant jsonb := parameters -> arg;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    ELSIF jsonb_typeof(v) <> 'boolean' THEN
        RAISE EXCEPTION '%: % must be a boolean, got %', fn, arg, left(v::text, 40)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v::text::boolean;
END;
$$;

-- The argument `arg` as text[]; NULL if absent or JSON null; 22023 unless a
-- JSON array of strings and nulls.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_param_text_array(fn text, parameters jsonb, arg text)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v constant jsonb := parameters -> arg;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    ELSIF jsonb_typeof(v) <> 'array'
          OR EXISTS (SELECT 1 FROM jsonb_array_elements(v) AS e(x) WHERE jsonb_typeof(e.x) NOT IN ('string', 'null')) THEN
        RAISE EXCEPTION '%: % must be an array of text', fn, arg
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN ARRAY(SELECT e.x #>> '{}' FROM jsonb_array_elements(v) WITH ORDINALITY AS e(x, ord) ORDER BY e.ord);
END;
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
-- sql/src/50-async-functions.sql
-- ---------------------------------------------------------------------------
-- The async functions: generation, embeddings, structured, batch, rerank.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Core async functions: text generation, embeddings
-- ===========================================================================
-- Every enqueue function hands its arguments, as jsonb keyed by argument
-- name, to a SECURITY DEFINER helper that validates all of them before
-- writing anything (_steadytext_validate: one validation path per function):
-- NULL -> 22004, bad value -> 22023, over a limit -> 54000 (see
-- steadytext_limits()); the message names the function and the argument.

-- Returns the new request's id. Raises 22004/22023/54000 for bad arguments,
-- 54000 when steadytext.max_queue_size is reached.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_async(
    prompt TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue('steadytext_generate_async', 'generate',
        jsonb_build_object('prompt', prompt, 'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        priority);
END;
$$;

-- Returns the new request's id (result: pgvector text '[...]'). Raises
-- 22004/22023/54000 for bad arguments or a full queue.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_embed_async(
    text_input TEXT,
    use_cache BOOLEAN DEFAULT true,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue('steadytext_embed_async', 'embed',
        jsonb_build_object('text_input', text_input, 'use_cache', use_cache),
        priority);
END;
$$;

-- ===========================================================================
-- Structured generation
-- ===========================================================================

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
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue('steadytext_generate_json_async', 'generate_json',
        jsonb_build_object('prompt', prompt, 'schema', steadytext_generate_json_async.schema,
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        priority);
END;
$$;

-- Returns the new request's id (result: text matching pattern in full).
-- Raises 22023 for a malformed pattern or a max_tokens below its shortest
-- match, 0A000 for constructs outside the supported dialect (backreferences,
-- lookaround, word boundaries, lazy quantifiers, \p, inner anchors; see
-- docs/limits.md), 54000 for a pattern too big, and as steadytext_generate_async.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_regex_async(
    prompt TEXT,
    pattern TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue('steadytext_generate_regex_async', 'generate_regex',
        jsonb_build_object('prompt', prompt, 'pattern', pattern,
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        priority);
END;
$$;

-- Returns the new request's id (result: exactly one of choices). Raises
-- 22004 for NULL choices or a NULL choice, 22023 for none / an empty or
-- duplicate choice, 54000 for more than max_choices, and as
-- steadytext_generate_async.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_choice_async(
    prompt TEXT,
    choices TEXT[],
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue('steadytext_generate_choice_async', 'generate_choice',
        jsonb_build_object('prompt', prompt, 'choices', to_jsonb(choices),
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        priority);
END;
$$;

-- ===========================================================================
-- Batch operations
-- ===========================================================================

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
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue_batch('steadytext_generate_batch_async', 'generate',
        jsonb_build_object('max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        prompts, priority);
END;
$$;

-- Returns one embed request id per text, in order ('{}' for an empty array);
-- shared batch_id. Raises as steadytext_generate_batch_async (argument texts).
CREATE OR REPLACE FUNCTION @extschema@.steadytext_embed_batch_async(
    texts TEXT[],
    use_cache BOOLEAN DEFAULT true,
    priority INTEGER DEFAULT 0
) RETURNS UUID[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue_batch('steadytext_embed_batch_async', 'embed',
        jsonb_build_object('use_cache', use_cache),
        texts, priority);
END;
$$;

-- ===========================================================================
-- Reranking
-- ===========================================================================

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
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue('steadytext_rerank_async', 'rerank',
        jsonb_build_object('query', steadytext_rerank_async.query, 'documents', to_jsonb(documents),
                           'task', task, 'use_cache', use_cache, 'seed', seed),
        priority);
END;
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

-- The generated text. Raises as steadytext_generate_async for bad
-- arguments, and as described above.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate(
    prompt TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TEXT
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate';
BEGIN
    RETURN @extschema@._steadytext_sync(fn, 'generate',
        jsonb_build_object('prompt', prompt, 'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed));
END;
$$;

-- The JSON document (text) matching schema. Raises as
-- steadytext_generate_json_async for bad arguments.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_json(
    prompt TEXT,
    schema JSONB,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TEXT
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_json';
BEGIN
    RETURN @extschema@._steadytext_sync(fn, 'generate_json',
        jsonb_build_object('prompt', prompt, 'schema', steadytext_generate_json.schema,
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed));
END;
$$;

-- Text matching pattern in full. Raises as steadytext_generate_regex_async
-- for bad arguments.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_regex(
    prompt TEXT,
    pattern TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TEXT
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_regex';
BEGIN
    RETURN @extschema@._steadytext_sync(fn, 'generate_regex',
        jsonb_build_object('prompt', prompt, 'pattern', pattern,
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed));
END;
$$;

-- Exactly one of choices. Raises as steadytext_generate_choice_async for bad
-- arguments.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_choice(
    prompt TEXT,
    choices TEXT[],
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TEXT
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_choice';
BEGIN
    RETURN @extschema@._steadytext_sync(fn, 'generate_choice',
        jsonb_build_object('prompt', prompt, 'choices', to_jsonb(choices),
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed));
END;
$$;

-- The L2-normalised embedding as real[]. With pgvector installed,
-- steadytext_embed(...)::vector converts it (pgvector's real[] -> vector
-- cast). Raises as steadytext_embed_async for bad arguments.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_embed(
    text_input TEXT,
    use_cache BOOLEAN DEFAULT true
) RETURNS REAL[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_embed';
BEGIN
    RETURN translate(@extschema@._steadytext_sync(fn, 'embed',
        jsonb_build_object('text_input', text_input, 'use_cache', use_cache)), '[]', '{}')::real[];
END;
$$;

-- One row per document, best first: (document, score). Raises as
-- steadytext_rerank_async for bad arguments.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_rerank(
    query TEXT,
    documents TEXT[],
    task TEXT DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TABLE(document TEXT, score DOUBLE PRECISION)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_rerank';
    ranked text;
BEGIN
    ranked := @extschema@._steadytext_sync(fn, 'rerank',
        jsonb_build_object('query', steadytext_rerank.query, 'documents', to_jsonb(documents),
                           'task', task, 'use_cache', use_cache, 'seed', seed));
    RETURN QUERY
    SELECT e.value ->> 'document', (e.value ->> 'score')::double precision
    FROM jsonb_array_elements(ranked::jsonb) WITH ORDINALITY AS e(value, ord)
    ORDER BY e.ord;
END;
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
              @extschema@.steadytext_migrations, @extschema@.steadytext_cache_hits
    FROM PUBLIC, steadytext_user, steadytext_admin, steadytext_worker, steadytext_handoff;
GRANT USAGE ON SCHEMA @extschema@ TO steadytext_user, steadytext_admin, steadytext_worker, steadytext_handoff;
GRANT SELECT ON @extschema@.steadytext_queue, @extschema@.steadytext_workers TO steadytext_user;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON @extschema@.steadytext_queue, @extschema@.steadytext_cache, @extschema@.steadytext_workers,
       @extschema@.steadytext_config, @extschema@.steadytext_dead_letter_queue
    TO steadytext_admin;
GRANT SELECT ON @extschema@.steadytext_migrations TO steadytext_admin, steadytext_worker;  -- the worker checks the schema version at start
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
        '_steadytext_handoff_insert', '_steadytext_handoff_status', '_steadytext_handoff_cancel'];
    for_worker constant text[] := ARRAY[
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
