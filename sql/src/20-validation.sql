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
