-- pg_steadytext 1.0.0: SteadyText's async AI functions for PostgreSQL.
-- One script, read top to bottom: tables, internal helpers, then the public
-- functions grouped as SteadyText's "PostgreSQL Extension - Async Functions" documentation groups them.
-- Installed by `CREATE EXTENSION pg_steadytext` or by `steadytext migrate`
-- (which binds @extschema@ and drops the guard line below).
\echo Use "CREATE EXTENSION pg_steadytext" to load this file. \quit

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
    models            jsonb            -- model id per role
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

-- ===========================================================================
-- Internal helpers: limits, argument validation, model ids
-- ===========================================================================
-- Internal helpers start with an underscore; they are not part of the spec's
-- surface and may change between versions.

-- Every size and count limit, in one place. Each is overridable by the GUC
-- steadytext.<name> (SET, ALTER DATABASE/ROLE/SYSTEM). Returns one row per
-- limit with its effective value. Raises 22023 if a GUC holds a non-integer.
CREATE FUNCTION steadytext_limits()
RETURNS TABLE(name text, value bigint, description text)
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    d record;
    setting text;
BEGIN
    FOR d IN
        SELECT * FROM (VALUES
            (1,  'max_tokens',           4096::bigint, 'largest max_tokens a generate* function accepts (smallest is 1)'),
            (2,  'max_prompt_bytes',     262144,       'largest prompt, text_input, query, task and each rerank document / batch item, in bytes'),
            (3,  'max_rerank_documents', 1000,         'most documents one steadytext_rerank_async call accepts'),
            (4,  'max_batch_items',      10000,        'most items one steadytext_*_batch_async call accepts'),
            (5,  'max_choices',          256,          'most choices steadytext_generate_choice_async accepts (at least 1)'),
            (6,  'max_pattern_bytes',    4096,         'largest regex pattern, in bytes'),
            (7,  'max_schema_bytes',     65536,        'largest JSON schema (its jsonb text), in bytes'),
            (8,  'max_schema_depth',     64,           'deepest nesting of objects/arrays in a JSON schema'),
            (9,  'max_queue_size',       0,            'most pending + processing requests before enqueue raises 54000; 0 = unlimited'),
            (10, 'cache_max_entries',    10000,        'steadytext_cache rows kept by steadytext_cache_evict()'),
            (11, 'sync_timeout_seconds', 30,           'seconds steadytext_generate/_embed/_rerank/... wait for the worker before raising 57014')
        ) AS t(ord, name, value, description)
        ORDER BY ord
    LOOP
        setting := nullif(btrim(current_setting('steadytext.' || d.name, true)), '');
        name := d.name;
        description := d.description;
        IF setting IS NULL THEN
            value := d.value;
        ELSIF setting ~ '^-?[0-9]{1,18}$' THEN
            value := setting::bigint;
        ELSE
            RAISE EXCEPTION 'steadytext.%: % is not an integer', d.name, quote_literal(setting)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- One limit's effective value.
CREATE FUNCTION _steadytext_limit(limit_name text)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT l.value FROM steadytext_limits() AS l WHERE l.name = limit_name
$$;

-- A required text argument: NULL -> 22004, empty -> 22023, too big -> 54000.
CREATE FUNCTION _steadytext_check_text(fn text, arg text, val text, max_bytes bigint)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = @extschema@, pg_catalog, pg_temp
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
CREATE FUNCTION _steadytext_check_not_null(fn text, arg text, is_null boolean)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    IF is_null THEN
        RAISE EXCEPTION '%: % must not be NULL', fn, arg
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
END;
$$;

-- max_tokens in 1..steadytext.max_tokens.
CREATE FUNCTION _steadytext_check_max_tokens(fn text, max_tokens integer)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    top bigint := _steadytext_limit('max_tokens');
BEGIN
    PERFORM _steadytext_check_not_null(fn, 'max_tokens', max_tokens IS NULL);
    IF max_tokens < 1 OR max_tokens > top THEN
        RAISE EXCEPTION '%: max_tokens must be between 1 and %, got %', fn, top, max_tokens
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;

-- seed: not NULL, not negative (the engine's seeds are unsigned 32-bit).
CREATE FUNCTION _steadytext_check_seed(fn text, seed integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM _steadytext_check_not_null(fn, 'seed', seed IS NULL);
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
CREATE FUNCTION _steadytext_check_text_array(
    fn text, arg text, vals text[], max_items bigint, max_items_guc text,
    allow_empty boolean, allow_empty_items boolean)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    max_bytes bigint := _steadytext_limit('max_prompt_bytes');
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

-- choices: 1..max_choices non-empty, distinct strings.
CREATE FUNCTION _steadytext_check_choices(fn text, choices text[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    dup text;
BEGIN
    PERFORM _steadytext_check_text_array(fn, 'choices', choices, _steadytext_limit('max_choices'),
                                         'steadytext.max_choices', false, false);
    SELECT c INTO dup FROM unnest(choices) AS c GROUP BY c HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '%: choices must be distinct, % appears more than once', fn, quote_literal(dup)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;

-- pattern: the regex subset a grammar can express exactly (the engine's
-- src/engine/regexGrammar.ts implements the same subset):
--   literals; escapes \d \w \s \D \W \S \n \t \r \f \v and escaped punctuation;
--   [...] classes with ranges and negation; .; (...) and (?:...); |;
--   * + ? {n} {n,} {n,m}; ^ only at the very start, $ only at the very end.
-- Unsupported constructs -> 0A000; a pattern PostgreSQL cannot compile -> 2201B;
-- NULL -> 22004; empty -> 22023; longer than max_pattern_bytes -> 54000.
CREATE FUNCTION _steadytext_check_pattern(fn text, pattern text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    max_bytes bigint := _steadytext_limit('max_pattern_bytes');
    c text[];
    n integer;
    i integer := 1;
    ch text;
    nx text;
    in_class boolean := false;
    class_start integer;
    what text;
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

    c := string_to_array(pattern, NULL);
    n := cardinality(c);
    IF left(pattern, 3) = '***' THEN
        what := 'an ARE director (***)';
    END IF;
    WHILE what IS NULL AND i <= n LOOP
        ch := c[i];
        nx := CASE WHEN i < n THEN c[i + 1] END;
        IF ch = '\' THEN
            EXIT WHEN nx IS NULL;  -- trailing backslash: the compile below reports it
            IF nx ~ '^[1-9k]$' THEN
                what := format('a backreference (\%s)', nx);
            ELSIF nx IN ('b', 'B', 'y', 'Y', 'm', 'M') THEN
                what := format('a word boundary (\%s)', nx);
            ELSIF nx IN ('A', 'Z') THEN
                what := format('an anchor (\%s)', nx);
            ELSIF nx IN ('p', 'P') THEN
                what := format('a Unicode property class (\%s)', nx);
            ELSIF nx ~ '^[0-9A-Za-z]$' AND nx !~ '^[dwsDWSntrfv]$' THEN
                what := format('the escape \%s', nx);
            END IF;
            i := i + 2;
            CONTINUE;
        END IF;
        IF in_class THEN
            IF ch = '[' AND nx IN (':', '.', '=') THEN
                what := format('a POSIX bracket expression ([%s)', nx);
            ELSIF ch = ']' AND i > class_start THEN
                in_class := false;
            END IF;
            i := i + 1;
            CONTINUE;
        END IF;
        IF ch = '[' THEN
            in_class := true;
            i := i + 1;
            IF i <= n AND c[i] = '^' THEN
                i := i + 1;
            END IF;
            class_start := i;  -- a ']' right here is a literal
            CONTINUE;
        ELSIF ch = '(' AND nx = '?' THEN
            IF i + 2 <= n AND c[i + 2] = ':' THEN
                i := i + 3;
                CONTINUE;
            ELSIF i + 2 <= n AND c[i + 2] IN ('=', '!') THEN
                what := format('a lookahead ((?%s)', c[i + 2]);
            ELSIF i + 3 <= n AND c[i + 2] = '<' AND c[i + 3] IN ('=', '!') THEN
                what := format('a lookbehind ((?<%s)', c[i + 3]);
            ELSE
                what := 'a (?...) group other than (?:...)';
            END IF;
        ELSIF ch IN ('*', '+', '?', '}') AND nx = '?' THEN
            what := format('a lazy quantifier (%s?)', ch);
        ELSIF ch = '^' AND i <> 1 THEN
            what := 'the anchor ^ anywhere but the very start';
        ELSIF ch = '$' AND i <> n THEN
            what := 'the anchor $ anywhere but the very end';
        END IF;
        i := i + 1;
    END LOOP;
    IF what IS NOT NULL THEN
        RAISE EXCEPTION '%: pattern uses %, at character %, which a grammar cannot express', fn, what, i
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Supported: literals, \d \w \s \D \W \S \n \t \r \f \v, escaped punctuation, [...] classes, ., (...), (?:...), |, * + ? {n} {n,} {n,m}, ^ at the start and $ at the end.';
    END IF;

    BEGIN
        PERFORM '' ~ pattern;
    EXCEPTION WHEN invalid_regular_expression THEN
        RAISE EXCEPTION '%: pattern is not a valid regular expression: %', fn, SQLERRM
            USING ERRCODE = 'invalid_regular_expression';
    END;
END;
$$;

-- schema: a JSON Schema object (or true) the engine can turn into a grammar.
-- Walks the document iteratively (a queue, no recursion): $ref anywhere ->
-- 0A000; nesting deeper than max_schema_depth or bigger than
-- max_schema_bytes -> 54000; malformed type / properties / required / enum /
-- subschemas -> 22023; NULL -> 22004.
CREATE FUNCTION _steadytext_check_schema(fn text, schema jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    max_bytes bigint := _steadytext_limit('max_schema_bytes');
    max_depth bigint := _steadytext_limit('max_schema_depth');
    type_names constant text[] := ARRAY['string', 'number', 'integer', 'boolean', 'object', 'array', 'null'];
    -- keywords whose value is a map from names to subschemas
    map_kw constant text[] := ARRAY['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];
    -- keywords whose value is one subschema
    one_kw constant text[] := ARRAY['additionalProperties', 'additionalItems', 'items', 'contains', 'not',
                                    'if', 'then', 'else', 'propertyNames', 'unevaluatedProperties',
                                    'unevaluatedItems'];
    -- keywords whose value is an array of subschemas
    list_kw constant text[] := ARRAY['allOf', 'anyOf', 'oneOf', 'prefixItems'];
    nodes jsonb[];
    depths integer[];
    kinds text[];     -- 'schema' | 'map' | 'list' | 'data'
    paths text[];
    head integer := 1;
    node jsonb;
    depth integer;
    kind text;
    path text;
    kv record;
    child_kind text;
    t jsonb;
    bytes integer;
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
    IF schema = 'true'::jsonb THEN
        RETURN;
    END IF;
    IF jsonb_typeof(schema) <> 'object' THEN
        RAISE EXCEPTION '%: schema must be a JSON object (or true), got %', fn, jsonb_typeof(schema)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    nodes := ARRAY[schema];
    depths := ARRAY[1];
    kinds := ARRAY['schema'];
    paths := ARRAY['schema'];
    WHILE head <= cardinality(nodes) LOOP
        node := nodes[head];
        depth := depths[head];
        kind := kinds[head];
        path := paths[head];
        head := head + 1;

        IF jsonb_typeof(node) IN ('object', 'array') AND depth > max_depth THEN
            RAISE EXCEPTION '%: schema nests deeper than % levels (at %)', fn, max_depth, path
                USING ERRCODE = 'program_limit_exceeded',
                      HINT = 'The limit is steadytext.max_schema_depth (see steadytext_limits()).';
        END IF;

        IF jsonb_typeof(node) = 'object' THEN
            IF node ? '$ref' THEN
                RAISE EXCEPTION '%: schema: $ref is not supported (at %)', fn, path
                    USING ERRCODE = 'feature_not_supported',
                          HINT = 'Inline the referenced schema.';
            END IF;
            IF kind = 'schema' THEN
                IF node ? 'type' THEN
                    t := node -> 'type';
                    IF NOT (
                        (jsonb_typeof(t) = 'string' AND (t #>> '{}') = ANY (type_names))
                        OR (jsonb_typeof(t) = 'array' AND jsonb_array_length(t) > 0 AND NOT EXISTS (
                                SELECT 1 FROM jsonb_array_elements(t) AS e
                                WHERE jsonb_typeof(e) <> 'string' OR NOT ((e #>> '{}') = ANY (type_names))))
                    ) THEN
                        RAISE EXCEPTION '%: schema: %.type must be one of % (or an array of them), got %',
                            fn, path, array_to_string(type_names, ', '), t
                            USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                END IF;
                IF node ? 'properties' AND jsonb_typeof(node -> 'properties') <> 'object' THEN
                    RAISE EXCEPTION '%: schema: %.properties must be an object', fn, path
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF node ? 'required' AND (jsonb_typeof(node -> 'required') <> 'array' OR EXISTS (
                        SELECT 1 FROM jsonb_array_elements(node -> 'required') AS e WHERE jsonb_typeof(e) <> 'string')) THEN
                    RAISE EXCEPTION '%: schema: %.required must be an array of strings', fn, path
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF node ? 'enum' AND jsonb_typeof(node -> 'enum') <> 'array' THEN
                    RAISE EXCEPTION '%: schema: %.enum must be an array', fn, path
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            END IF;
            FOR kv IN SELECT e.key, e.value FROM jsonb_each(node) AS e LOOP
                IF kind = 'schema' THEN
                    child_kind := CASE
                        WHEN kv.key = ANY (map_kw) THEN 'map'
                        WHEN kv.key = 'items' AND jsonb_typeof(kv.value) = 'array' THEN 'list'
                        WHEN kv.key = ANY (one_kw) THEN 'schema'
                        WHEN kv.key = ANY (list_kw) THEN 'list'
                        ELSE 'data' END;
                    IF child_kind = 'map' AND jsonb_typeof(kv.value) <> 'object' THEN
                        RAISE EXCEPTION '%: schema: %.% must be an object', fn, path, kv.key
                            USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                    IF child_kind = 'list' AND jsonb_typeof(kv.value) <> 'array' THEN
                        RAISE EXCEPTION '%: schema: %.% must be an array of schemas', fn, path, kv.key
                            USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                ELSIF kind = 'map' THEN
                    child_kind := 'schema';
                ELSE
                    child_kind := 'data';
                END IF;
                IF child_kind <> 'data' OR jsonb_typeof(kv.value) IN ('object', 'array') THEN
                    nodes := nodes || kv.value;
                    depths := depths || (depth + 1);
                    kinds := kinds || child_kind;
                    paths := paths || (path || '.' || kv.key);
                END IF;
            END LOOP;
        ELSIF jsonb_typeof(node) = 'array' THEN
            FOR kv IN SELECT e.value, e.ord FROM jsonb_array_elements(node) WITH ORDINALITY AS e(value, ord) LOOP
                child_kind := CASE WHEN kind = 'list' THEN 'schema' ELSE 'data' END;
                IF child_kind <> 'data' OR jsonb_typeof(kv.value) IN ('object', 'array') THEN
                    nodes := nodes || kv.value;
                    depths := depths || (depth + 1);
                    kinds := kinds || child_kind;
                    paths := paths || format('%s[%s]', path, kv.ord - 1);
                END IF;
            END LOOP;
        ELSIF kind = 'schema' AND jsonb_typeof(node) <> 'boolean' THEN
            RAISE EXCEPTION '%: schema: % must be a schema object or boolean, got %', fn, path, jsonb_typeof(node)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
END;
$$;

-- Model id per role ('generation', 'embedding', 'reranking') as the workers
-- published it in steadytext_config ('model.<role>'); 'default-<role>' before
-- any worker started.
CREATE FUNCTION _steadytext_model_id(role text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (SELECT c.value #>> '{}' FROM steadytext_config AS c WHERE c.key = 'model.' || role),
        'default-' || role)
$$;

-- Raises 54000 (enqueueing nothing) when adding `adding` requests would take
-- pending + processing past steadytext.max_queue_size (unset or 0: unlimited).
-- The count is bounded: it never reads more than max_queue_size + 1 rows.
CREATE FUNCTION _steadytext_check_queue_size(fn text, adding bigint)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    max_size bigint := _steadytext_limit('max_queue_size');
    queued bigint;
BEGIN
    IF max_size IS NULL OR max_size <= 0 OR adding <= 0 THEN
        RETURN;
    END IF;
    SELECT count(*) INTO queued
    FROM (SELECT 1 FROM steadytext_queue AS q
          WHERE q.status IN ('pending', 'processing')
          LIMIT max_size + 1) AS s;
    IF queued + adding > max_size THEN
        RAISE EXCEPTION '%: queue is full: % pending/processing requests + % new would exceed steadytext.max_queue_size = %',
            fn, CASE WHEN queued > max_size THEN 'more than ' || max_size ELSE queued::text END, adding, max_size
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Wait for workers to drain the queue, or raise steadytext.max_queue_size.';
    END IF;
END;
$$;

-- The role a SECURITY DEFINER helper acts for. Inside such a helper
-- current_user is the extension's owner, so its callers pass their own
-- current_user (the helpers' `caller name DEFAULT current_user` is evaluated
-- in the caller's context, before the helper's). A role named explicitly is
-- accepted only if the session could become it anyway: it is the session
-- user, or the session user is a member of it (as SET ROLE requires).
-- Raises 42501 otherwise.
CREATE FUNCTION _steadytext_caller(caller name)
RETURNS name
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    IF caller IS NULL
       OR NOT (caller = session_user
               OR (EXISTS (SELECT 1 FROM pg_roles AS r WHERE r.rolname = caller)
                   AND pg_has_role(session_user, caller, 'MEMBER'))) THEN
        RAISE EXCEPTION 'steadytext: session user % cannot act for role %', session_user, coalesce(quote_ident(caller), 'NULL')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN caller;
END;
$$;

-- Whether `who` sees every request (not only those it owns): a superuser, a
-- member of steadytext_admin or steadytext_worker, or of the role owning
-- steadytext_queue. The row-level security policies say the same.
CREATE FUNCTION _steadytext_sees_all(who name)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = who), false)
        OR pg_has_role(who, 'steadytext_admin', 'MEMBER')
        OR pg_has_role(who, 'steadytext_worker', 'MEMBER')
        OR pg_has_role(who, (SELECT c.relowner FROM pg_class AS c WHERE c.oid = 'steadytext_queue'::regclass), 'MEMBER');
END;
$$;

-- ===========================================================================
-- Cache keys
-- ===========================================================================

-- sha256 (hex) of the canonical jsonb {function, model, parameters}, where
-- parameters keeps only the keys that change the output:
--   generate: prompt, max_tokens, seed        embed: text_input
--   generate_json: + schema   generate_regex: + pattern
--   generate_choice: + choices                rerank: query, documents, task, seed
-- jsonb's text form is canonical (sorted keys, one spacing), so equal inputs
-- give equal keys. Returns NULL when any argument is NULL; raises 22023 for an
-- unknown function_name. The worker stores results under this key.
CREATE FUNCTION steadytext_cache_key(function_name text, model_id text, parameters jsonb)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    keys text[];
    kept jsonb;
BEGIN
    keys := CASE function_name
        WHEN 'generate'        THEN ARRAY['prompt', 'max_tokens', 'seed']
        WHEN 'generate_json'   THEN ARRAY['prompt', 'max_tokens', 'seed', 'schema']
        WHEN 'generate_regex'  THEN ARRAY['prompt', 'max_tokens', 'seed', 'pattern']
        WHEN 'generate_choice' THEN ARRAY['prompt', 'max_tokens', 'seed', 'choices']
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
    RETURN encode(sha256(convert_to(
        jsonb_build_object('function', function_name, 'model', model_id, 'parameters', kept)::text,
        'UTF8')), 'hex');
END;
$$;

-- ===========================================================================
-- Enqueue internals
-- ===========================================================================

-- Inserts one request owned by `caller` (see _steadytext_caller): born
-- 'completed' from steadytext_cache on a hit (when use_cache; the cache row's
-- access_count/last_accessed are bumped), else 'pending' with a NOTIFY
-- steadytext_new_job (delivered at commit). SECURITY DEFINER: callers cannot
-- read the cache or write the queue themselves; cache_key is computed here
-- from the very parameters the worker will run.
CREATE FUNCTION _steadytext_enqueue(fn text, function_name text, role text, parameters jsonb,
                                    use_cache boolean, priority integer, caller name DEFAULT current_user)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    owner name := _steadytext_caller(caller);
    model text := _steadytext_model_id(role);
    key text := steadytext_cache_key(function_name, model, parameters);
    cached text;
    id uuid;
BEGIN
    IF use_cache THEN
        UPDATE steadytext_cache AS c
        SET access_count = c.access_count + 1, last_accessed = now()
        WHERE c.cache_key = key
        RETURNING c.result INTO cached;
        IF FOUND THEN
            INSERT INTO steadytext_queue AS q
                (function_name, parameters, status, priority, result, started_at, completed_at, cache_key, model_id,
                 owner_role)
            VALUES (_steadytext_enqueue.function_name, _steadytext_enqueue.parameters, 'completed',
                    _steadytext_enqueue.priority, cached, now(), now(), key, model, owner)
            RETURNING q.request_id INTO id;
            RETURN id;
        END IF;
    END IF;
    PERFORM _steadytext_check_queue_size(fn, 1);
    INSERT INTO steadytext_queue AS q (function_name, parameters, priority, cache_key, model_id, owner_role)
    VALUES (_steadytext_enqueue.function_name, _steadytext_enqueue.parameters,
            _steadytext_enqueue.priority, key, model, owner)
    RETURNING q.request_id INTO id;
    PERFORM pg_notify('steadytext_new_job', '');
    RETURN id;
END;
$$;

-- Inserts one request per item in one INSERT ... SELECT over
-- unnest(items) WITH ORDINALITY, sharing a batch_id, batch_index = position
-- (0-based). Each item's parameters are `base` plus {item_key: item}; items
-- found in steadytext_cache (when use_cache) are born 'completed'. created_at
-- is spaced 1 microsecond apart in item order so that the claim order
-- (priority DESC, created_at) is the item order. Returns the request ids in
-- item order. The caller validates the items first. max_queue_size counts
-- every item of the batch. Rows are owned by `caller`; SECURITY DEFINER as
-- _steadytext_enqueue.
CREATE FUNCTION _steadytext_enqueue_batch(fn text, function_name text, role text, base jsonb,
                                          item_key text, items text[], use_cache boolean, priority integer,
                                          caller name DEFAULT current_user)
RETURNS uuid[]
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    owner name := _steadytext_caller(caller);
    model text := _steadytext_model_id(role);
    batch uuid := gen_random_uuid();
    ids uuid[];
    pending bigint;
BEGIN
    IF cardinality(items) = 0 THEN
        RETURN '{}'::uuid[];
    END IF;
    PERFORM _steadytext_check_queue_size(fn, cardinality(items));
    WITH it AS MATERIALIZED (
        SELECT u.ord, p.parameters,
               steadytext_cache_key(_steadytext_enqueue_batch.function_name, model, p.parameters) AS cache_key
        FROM unnest(items) WITH ORDINALITY AS u(item, ord)
        CROSS JOIN LATERAL (SELECT base || jsonb_build_object(item_key, u.item) AS parameters) AS p
    ), wanted AS (
        SELECT it.cache_key, count(*) AS n FROM it WHERE use_cache GROUP BY it.cache_key
    ), hits AS (
        -- one access per item that hits (duplicate items count once each)
        UPDATE steadytext_cache AS c
        SET access_count = c.access_count + wanted.n, last_accessed = now()
        FROM wanted WHERE c.cache_key = wanted.cache_key
        RETURNING c.cache_key, c.result
    ), ins AS (
        INSERT INTO steadytext_queue AS q
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

-- ===========================================================================
-- Queue triggers: completed_at bookkeeping and the completion NOTIFY
-- ===========================================================================

-- BEFORE: a row entering a terminal state gets completed_at (now(), unless the
-- statement sets one) and, entering 'failed', failed_at; a row leaving the
-- terminal states (retry) loses completed_at.
CREATE FUNCTION _steadytext_queue_stamp()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
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

CREATE TRIGGER steadytext_queue_stamp_insert
    BEFORE INSERT ON steadytext_queue
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed', 'cancelled') OR NEW.completed_at IS NOT NULL)
    EXECUTE FUNCTION _steadytext_queue_stamp();

CREATE TRIGGER steadytext_queue_stamp_update
    BEFORE UPDATE ON steadytext_queue
    FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status)
    EXECUTE FUNCTION _steadytext_queue_stamp();

-- AFTER: exactly one NOTIFY steadytext_completed per terminal transition,
-- payload {"request_id","function","status"[, "batch_id"]}, sent at commit.
CREATE FUNCTION _steadytext_queue_notify_completed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('steadytext_completed',
        CASE WHEN NEW.batch_id IS NULL
            THEN json_build_object('request_id', NEW.request_id, 'function', NEW.function_name,
                                   'status', NEW.status)
            ELSE json_build_object('request_id', NEW.request_id, 'function', NEW.function_name,
                                   'status', NEW.status, 'batch_id', NEW.batch_id)
        END::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER steadytext_queue_completed_insert
    AFTER INSERT ON steadytext_queue
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed', 'cancelled'))
    EXECUTE FUNCTION _steadytext_queue_notify_completed();

CREATE TRIGGER steadytext_queue_completed_update
    AFTER UPDATE OF status ON steadytext_queue
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed', 'cancelled')
                       AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION _steadytext_queue_notify_completed();

-- ===========================================================================
-- Core async functions: text generation, embeddings
-- ===========================================================================
-- Every enqueue function validates all of its arguments before writing
-- anything: NULL -> 22004, bad value -> 22023, over a limit -> 54000 (see
-- steadytext_limits()); the message names the argument.

-- Returns the new request's id. Raises 22004/22023/54000 for bad arguments,
-- 54000 when steadytext.max_queue_size is reached.
CREATE FUNCTION steadytext_generate_async(
    prompt TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_async';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue(fn, 'generate', 'generation',
        jsonb_build_object('prompt', prompt, 'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache, priority);
END;
$$;

-- Returns the new request's id (result: pgvector text '[...]'). Raises
-- 22004/22023/54000 for bad arguments or a full queue.
CREATE FUNCTION steadytext_embed_async(
    text_input TEXT,
    use_cache BOOLEAN DEFAULT true,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_embed_async';
BEGIN
    PERFORM _steadytext_check_text(fn, 'text_input', text_input, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue(fn, 'embed', 'embedding',
        jsonb_build_object('text_input', text_input, 'use_cache', use_cache),
        use_cache, priority);
END;
$$;

-- ===========================================================================
-- Structured generation
-- ===========================================================================

-- Returns the new request's id (result: a JSON document matching schema).
-- Raises 0A000 for $ref, 54000 for a too big / too deep schema, 22023 for a
-- malformed one, and as steadytext_generate_async for the rest.
CREATE FUNCTION steadytext_generate_json_async(
    prompt TEXT,
    schema JSONB,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_json_async';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_schema(fn, steadytext_generate_json_async.schema);
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue(fn, 'generate_json', 'generation',
        jsonb_build_object('prompt', prompt, 'schema', steadytext_generate_json_async.schema,
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache, priority);
END;
$$;

-- Returns the new request's id (result: text matching pattern in full).
-- Raises 2201B for a pattern PostgreSQL cannot compile, 0A000 for constructs
-- outside the supported subset (backreferences, lookaround, word boundaries,
-- lazy quantifiers, \p, inner anchors), and as steadytext_generate_async.
CREATE FUNCTION steadytext_generate_regex_async(
    prompt TEXT,
    pattern TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_regex_async';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_pattern(fn, pattern);
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue(fn, 'generate_regex', 'generation',
        jsonb_build_object('prompt', prompt, 'pattern', pattern,
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache, priority);
END;
$$;

-- Returns the new request's id (result: exactly one of choices). Raises
-- 22004 for NULL choices or a NULL choice, 22023 for none / an empty or
-- duplicate choice, 54000 for more than max_choices, and as
-- steadytext_generate_async.
CREATE FUNCTION steadytext_generate_choice_async(
    prompt TEXT,
    choices TEXT[],
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_choice_async';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_choices(fn, choices);
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue(fn, 'generate_choice', 'generation',
        jsonb_build_object('prompt', prompt, 'choices', to_jsonb(choices),
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache, priority);
END;
$$;

-- ===========================================================================
-- Batch operations
-- ===========================================================================

-- Returns one request id per prompt, in prompt order ('{}' for an empty
-- array); the requests share one batch_id. Every prompt is validated before
-- anything is written: NULL array or prompt -> 22004, empty prompt -> 22023,
-- more than max_batch_items or a prompt over max_prompt_bytes -> 54000.
CREATE FUNCTION steadytext_generate_batch_async(
    prompts TEXT[],
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID[]
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_batch_async';
BEGIN
    PERFORM _steadytext_check_text_array(fn, 'prompts', prompts, _steadytext_limit('max_batch_items'),
                                         'steadytext.max_batch_items', true, false);
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue_batch(fn, 'generate', 'generation',
        jsonb_build_object('max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        'prompt', prompts, use_cache, priority);
END;
$$;

-- Returns one embed request id per text, in order ('{}' for an empty array);
-- shared batch_id. Raises as steadytext_generate_batch_async (argument texts).
CREATE FUNCTION steadytext_embed_batch_async(
    texts TEXT[],
    use_cache BOOLEAN DEFAULT true,
    priority INTEGER DEFAULT 0
) RETURNS UUID[]
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_embed_batch_async';
BEGIN
    PERFORM _steadytext_check_text_array(fn, 'texts', texts, _steadytext_limit('max_batch_items'),
                                         'steadytext.max_batch_items', true, false);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue_batch(fn, 'embed', 'embedding',
        jsonb_build_object('use_cache', use_cache),
        'text_input', texts, use_cache, priority);
END;
$$;

-- ===========================================================================
-- Reranking
-- ===========================================================================

-- Returns the new request's id (result: JSON [{"document","score","index"}],
-- best first). Raises 22004 for NULL documents or a NULL document, 22023 for
-- no documents, 54000 for more than max_rerank_documents or one over
-- max_prompt_bytes, and 22004/22023/54000 for query/task/seed/priority.
CREATE FUNCTION steadytext_rerank_async(
    query TEXT,
    documents TEXT[],
    task TEXT DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42,
    priority INTEGER DEFAULT 0
) RETURNS UUID
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_rerank_async';
BEGIN
    PERFORM _steadytext_check_text(fn, 'query', steadytext_rerank_async.query, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_text_array(fn, 'documents', documents, _steadytext_limit('max_rerank_documents'),
                                         'steadytext.max_rerank_documents', false, true);
    PERFORM _steadytext_check_text(fn, 'task', task, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    PERFORM _steadytext_check_not_null(fn, 'priority', priority IS NULL);
    RETURN _steadytext_enqueue(fn, 'rerank', 'reranking',
        jsonb_build_object('query', steadytext_rerank_async.query, 'documents', to_jsonb(documents),
                           'task', task, 'use_cache', use_cache, 'seed', seed),
        use_cache, priority);
END;
$$;

-- ===========================================================================
-- Result management
-- ===========================================================================

-- One row: the request's status, result, error, times (timestamp in the
-- session's TimeZone) and priority; status 'not_found' (other columns NULL)
-- for an unknown id. Raises 22004 for a NULL request_id.
CREATE FUNCTION steadytext_check_async(request_id UUID)
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
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM _steadytext_check_not_null('steadytext_check_async', 'request_id',
                                       steadytext_check_async.request_id IS NULL);
    RETURN QUERY
    SELECT coalesce(q.status, 'not_found'), q.result, q.error,
           q.created_at::timestamp, q.started_at::timestamp, q.completed_at::timestamp, q.priority
    FROM (SELECT 1) AS one
    LEFT JOIN steadytext_queue AS q ON q.request_id = steadytext_check_async.request_id;
END;
$$;

-- One row per element of request_ids, in the given order (duplicates
-- repeated); unknown ids get status 'not_found'. Raises 22004 for NULL.
CREATE FUNCTION steadytext_check_async_batch(request_ids UUID[])
RETURNS TABLE(
    request_id UUID,
    status TEXT,
    result TEXT,
    error TEXT,
    created_at TIMESTAMP,
    completed_at TIMESTAMP
)
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM _steadytext_check_not_null('steadytext_check_async_batch', 'request_ids', request_ids IS NULL);
    RETURN QUERY
    SELECT u.id, coalesce(q.status, 'not_found'), q.result, q.error,
           q.created_at::timestamp, q.completed_at::timestamp
    FROM unnest(request_ids) WITH ORDINALITY AS u(id, ord)
    LEFT JOIN steadytext_queue AS q ON q.request_id = u.id
    ORDER BY u.ord;
END;
$$;

-- The same for ids written as text, so that the spec's example
-- `steadytext_check_async_batch(ARRAY['550e8400-...', ...])` (a text[]) runs
-- as written. Raises 22P02 for a string that is not a UUID, 22004 for NULL.
-- (With two overloads an untyped literal or driver parameter is ambiguous:
-- write '{...}'::uuid[] or $1::uuid[].)
CREATE FUNCTION steadytext_check_async_batch(request_ids TEXT[])
RETURNS TABLE(
    request_id UUID,
    status TEXT,
    result TEXT,
    error TEXT,
    created_at TIMESTAMP,
    completed_at TIMESTAMP
)
LANGUAGE sql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT * FROM steadytext_check_async_batch(request_ids::uuid[])
$$;

-- The libpq connection string the request-response hand-off uses to reach
-- this database from a second, autonomous session (through dblink): the GUC
-- steadytext.dblink_connstr if set by the server's operator (postgresql.conf,
-- ALTER SYSTEM, ALTER DATABASE, command line), else steadytext_config
-- 'dblink_connstr', else dbname/port/user of the current role (plus the first
-- unix socket dir). A value a role set for itself (SET, ALTER ROLE, PGOPTIONS)
-- is ignored: the hand-off connects with the owner's rights, so callers must
-- not choose where it connects. Not executable by steadytext_user (it may
-- return a password).
CREATE FUNCTION steadytext_dblink_connstr()
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
CREATE FUNCTION _steadytext_conninfo_quote(v text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT '''' || replace(replace(v, '\', '\\'), '''', '\''') || ''''
$$;

-- Whether this (visible) row was written by the current transaction and is
-- not committed yet: a visible row whose xmin is still in progress can only
-- be our own (sub)transaction's.
CREATE FUNCTION _steadytext_is_own_uncommitted(row_xmin xid)
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
CREATE FUNCTION _steadytext_handoff(original uuid, timeout_seconds integer, deadline timestamptz)
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

-- The result of a finished request, or the error for a failed/cancelled one.
CREATE FUNCTION _steadytext_result_or_raise(request_id uuid, status text, result text, error text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = @extschema@, pg_catalog, pg_temp
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

-- Waits up to timeout_seconds for the request and returns its result.
-- Raises P0002 (no_data_found) for an unknown request_id, STX01 if the job
-- failed (message and DETAIL carry its error), STX02 if it was cancelled,
-- 57014 (query_canceled) when the timeout passes, 22004/22023 for NULL or
-- negative arguments. Polls the row with growing sleeps (10 ms .. 200 ms);
-- every poll sees new commits under READ COMMITTED (under REPEATABLE READ or
-- SERIALIZABLE the row never changes: it waits out the timeout). A request
-- enqueued by this same, uncommitted transaction is handed to a worker
-- through dblink (see _steadytext_handoff).
CREATE FUNCTION steadytext_get_async_result(
    request_id UUID,
    timeout_seconds INTEGER DEFAULT 30
) RETURNS TEXT
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_get_async_result';
    id constant uuid := steadytext_get_async_result.request_id;
    deadline timestamptz;
    delay double precision := 0.01;
    r record;
    checked_own boolean := false;
BEGIN
    PERFORM _steadytext_check_not_null(fn, 'request_id', id IS NULL);
    PERFORM _steadytext_check_not_null(fn, 'timeout_seconds', timeout_seconds IS NULL);
    IF timeout_seconds < 0 THEN
        RAISE EXCEPTION '%: timeout_seconds must be >= 0, got %', fn, timeout_seconds
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    deadline := clock_timestamp() + timeout_seconds * interval '1 second';
    LOOP
        SELECT q.status, q.result, q.error, q.xmin AS row_xmin INTO r
        FROM steadytext_queue AS q WHERE q.request_id = id;
        IF NOT FOUND THEN
            RAISE EXCEPTION '%: request % does not exist', fn, id
                USING ERRCODE = 'no_data_found';
        END IF;
        IF r.status IN ('completed', 'failed', 'cancelled') THEN
            RETURN _steadytext_result_or_raise(id, r.status, r.result, r.error);
        END IF;
        IF NOT checked_own THEN
            checked_own := true;
            IF r.status = 'pending' AND _steadytext_is_own_uncommitted(r.row_xmin) THEN
                RETURN _steadytext_handoff(id, timeout_seconds, deadline);
            END IF;
        END IF;
        IF clock_timestamp() >= deadline THEN
            RAISE EXCEPTION '%: request % did not finish within % seconds (status: %)', fn, id, timeout_seconds, r.status
                USING ERRCODE = 'query_canceled',
                      HINT = 'Wait longer (timeout_seconds), or check on it later with steadytext_check_async.';
        END IF;
        PERFORM pg_sleep(least(delay, greatest(extract(epoch FROM deadline - clock_timestamp()), 0.001)));
        delay := least(delay * 2, 0.2);
    END LOOP;
END;
$$;

-- true if the request was pending or processing and is now 'cancelled'
-- (completed_at set, error 'cancelled by user'); false for an unknown or
-- already finished one. Sends NOTIFY steadytext_cancelled (payload: the
-- request_id) so the worker running it aborts, and steadytext_completed via
-- the trigger. A role cancels only its own requests (admins, workers and
-- superusers any): another role's request counts as unknown (false).
-- Raises 22004 for NULL.
CREATE FUNCTION steadytext_cancel_async(request_id UUID) RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM _steadytext_check_not_null('steadytext_cancel_async', 'request_id', steadytext_cancel_async.request_id IS NULL);
    RETURN _steadytext_cancel(steadytext_cancel_async.request_id);
END;
$$;

-- steadytext_cancel_async's write, for `caller` (SECURITY DEFINER: callers
-- cannot UPDATE the queue themselves).
CREATE FUNCTION _steadytext_cancel(request_id uuid, caller name DEFAULT current_user) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    id constant uuid := _steadytext_cancel.request_id;
    who constant name := _steadytext_caller(caller);
    all_rows constant boolean := _steadytext_sees_all(who);
BEGIN
    UPDATE steadytext_queue AS q
    SET status = 'cancelled', error = 'cancelled by user', completed_at = now()
    WHERE q.request_id = id AND q.status IN ('pending', 'processing')
      AND (all_rows OR q.owner_role = who);
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pg_notify('steadytext_cancelled', id::text);
    RETURN true;
END;
$$;

-- true if the request was 'failed' and is queued again ('pending', run_at
-- now(); retry_count and the last error kept; NOTIFY steadytext_new_job);
-- false otherwise (also for another role's request: a role retries only its
-- own, admins, workers and superusers any). Raises 22004 for NULL.
CREATE FUNCTION steadytext_retry_failed(request_id UUID) RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM _steadytext_check_not_null('steadytext_retry_failed', 'request_id', steadytext_retry_failed.request_id IS NULL);
    RETURN _steadytext_retry(steadytext_retry_failed.request_id);
END;
$$;

-- steadytext_retry_failed's write, for `caller` (SECURITY DEFINER).
CREATE FUNCTION _steadytext_retry(request_id uuid, caller name DEFAULT current_user) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    id constant uuid := _steadytext_retry.request_id;
    who constant name := _steadytext_caller(caller);
    all_rows constant boolean := _steadytext_sees_all(who);
BEGIN
    UPDATE steadytext_queue AS q
    SET status = 'pending', run_at = now(), started_at = NULL, worker_id = NULL, result = NULL
    WHERE q.request_id = id AND q.status = 'failed'
      AND (all_rows OR q.owner_role = who);
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pg_notify('steadytext_new_job', '');
    RETURN true;
END;
$$;

-- The embedding of a completed embed request as real[] (its result is the
-- pgvector text '[a,b,...]'). Raises P0002 for an unknown request, 22023 for
-- a request that is not an embedding, 55000 if it has not completed.
CREATE FUNCTION steadytext_embedding(request_id UUID) RETURNS REAL[]
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_embedding';
    r record;
BEGIN
    PERFORM _steadytext_check_not_null(fn, 'request_id', steadytext_embedding.request_id IS NULL);
    SELECT q.function_name, q.status, q.result INTO r
    FROM steadytext_queue AS q WHERE q.request_id = steadytext_embedding.request_id;
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
-- failed, STX02 cancelled, 57014 timeout).

-- steadytext.sync_timeout_seconds as an integer >= 0; 22023 otherwise.
CREATE FUNCTION _steadytext_sync_timeout(fn text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    v bigint := _steadytext_limit('sync_timeout_seconds');
BEGIN
    IF v < 0 OR v > 2147483647 THEN
        RAISE EXCEPTION '%: steadytext.sync_timeout_seconds must be between 0 and 2147483647, got %', fn, v
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v::integer;
END;
$$;

-- The cached result for (function_name, model of role, parameters), bumping
-- the entry's access_count/last_accessed; NULL on a miss. SECURITY DEFINER
-- (callers cannot read steadytext_cache): it answers only the question an
-- enqueue would answer for the same arguments.
CREATE FUNCTION _steadytext_cache_lookup(function_name text, role text, parameters jsonb)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    key text := steadytext_cache_key(function_name, _steadytext_model_id(role), parameters);
    cached text;
BEGIN
    UPDATE steadytext_cache AS c
    SET access_count = c.access_count + 1, last_accessed = now()
    WHERE c.cache_key = key
    RETURNING c.result INTO cached;
    RETURN cached;
END;
$$;

-- Raises 55000 unless a worker is 'running' with a heartbeat within its
-- heartbeat_timeout_seconds (on the wall clock, not the transaction's).
CREATE FUNCTION _steadytext_require_worker(fn text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM steadytext_workers AS w
        WHERE w.status = 'running'
          AND w.last_heartbeat >= clock_timestamp() - w.heartbeat_timeout_seconds * interval '1 second')
    THEN
        RAISE EXCEPTION '%: no steadytext worker is running: start one with `steadytext worker` (or `steadytext up`)', fn
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'SELECT * FROM steadytext_worker_status() lists the workers seen in the last hour; a cached result (use_cache) is answered without one.';
    END IF;
END;
$$;

-- The synchronous path shared by the functions below; the caller has
-- validated the arguments. Returns the result text.
CREATE FUNCTION _steadytext_sync(fn text, function_name text, role text, parameters jsonb, use_cache boolean)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    timeout integer := _steadytext_sync_timeout(fn);
    cached text;
    id uuid;
BEGIN
    IF use_cache THEN
        cached := _steadytext_cache_lookup(function_name, role, parameters);
        IF cached IS NOT NULL THEN
            RETURN cached;
        END IF;
    END IF;
    PERFORM _steadytext_require_worker(fn);
    IF NOT EXISTS (SELECT 1 FROM pg_extension AS e WHERE e.extname = 'dblink') THEN
        RAISE EXCEPTION '%: waiting for a worker inside one statement needs the dblink extension', fn
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run CREATE EXTENSION dblink (see the request-response hand-off in docs/sql-reference.md), or use the _async function and wait after committing.';
    END IF;
    id := _steadytext_enqueue(fn, function_name, role, parameters, use_cache, 0);
    RETURN steadytext_get_async_result(id, timeout);
END;
$$;

-- The generated text. Raises as steadytext_generate_async for bad
-- arguments, and as described above.
CREATE FUNCTION steadytext_generate(
    prompt TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TEXT
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    RETURN _steadytext_sync(fn, 'generate', 'generation',
        jsonb_build_object('prompt', prompt, 'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache);
END;
$$;

-- The JSON document (text) matching schema. Raises as
-- steadytext_generate_json_async for bad arguments.
CREATE FUNCTION steadytext_generate_json(
    prompt TEXT,
    schema JSONB,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TEXT
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_json';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_schema(fn, steadytext_generate_json.schema);
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    RETURN _steadytext_sync(fn, 'generate_json', 'generation',
        jsonb_build_object('prompt', prompt, 'schema', steadytext_generate_json.schema,
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache);
END;
$$;

-- Text matching pattern in full. Raises as steadytext_generate_regex_async
-- for bad arguments.
CREATE FUNCTION steadytext_generate_regex(
    prompt TEXT,
    pattern TEXT,
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TEXT
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_regex';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_pattern(fn, pattern);
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    RETURN _steadytext_sync(fn, 'generate_regex', 'generation',
        jsonb_build_object('prompt', prompt, 'pattern', pattern,
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache);
END;
$$;

-- Exactly one of choices. Raises as steadytext_generate_choice_async for bad
-- arguments.
CREATE FUNCTION steadytext_generate_choice(
    prompt TEXT,
    choices TEXT[],
    max_tokens INTEGER DEFAULT 512,
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TEXT
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_generate_choice';
BEGIN
    PERFORM _steadytext_check_text(fn, 'prompt', prompt, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_choices(fn, choices);
    PERFORM _steadytext_check_max_tokens(fn, max_tokens);
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    RETURN _steadytext_sync(fn, 'generate_choice', 'generation',
        jsonb_build_object('prompt', prompt, 'choices', to_jsonb(choices),
                           'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed),
        use_cache);
END;
$$;

-- The L2-normalised embedding as real[]. With pgvector installed,
-- steadytext_embed(...)::vector converts it (pgvector's real[] -> vector
-- cast). Raises as steadytext_embed_async for bad arguments.
CREATE FUNCTION steadytext_embed(
    text_input TEXT,
    use_cache BOOLEAN DEFAULT true
) RETURNS REAL[]
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_embed';
BEGIN
    PERFORM _steadytext_check_text(fn, 'text_input', text_input, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    RETURN translate(_steadytext_sync(fn, 'embed', 'embedding',
        jsonb_build_object('text_input', text_input, 'use_cache', use_cache), use_cache), '[]', '{}')::real[];
END;
$$;

-- One row per document, best first: (document, score). Raises as
-- steadytext_rerank_async for bad arguments.
CREATE FUNCTION steadytext_rerank(
    query TEXT,
    documents TEXT[],
    task TEXT DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    use_cache BOOLEAN DEFAULT true,
    seed INTEGER DEFAULT 42
) RETURNS TABLE(document TEXT, score DOUBLE PRECISION)
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    fn constant text := 'steadytext_rerank';
    ranked text;
BEGIN
    PERFORM _steadytext_check_text(fn, 'query', steadytext_rerank.query, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_text_array(fn, 'documents', documents, _steadytext_limit('max_rerank_documents'),
                                         'steadytext.max_rerank_documents', false, true);
    PERFORM _steadytext_check_text(fn, 'task', task, _steadytext_limit('max_prompt_bytes'));
    PERFORM _steadytext_check_not_null(fn, 'use_cache', use_cache IS NULL);
    PERFORM _steadytext_check_seed(fn, seed);
    ranked := _steadytext_sync(fn, 'rerank', 'reranking',
        jsonb_build_object('query', steadytext_rerank.query, 'documents', to_jsonb(documents),
                           'task', task, 'use_cache', use_cache, 'seed', seed),
        use_cache);
    RETURN QUERY
    SELECT e.value ->> 'document', (e.value ->> 'score')::double precision
    FROM jsonb_array_elements(ranked::jsonb) WITH ORDINALITY AS e(value, ord)
    ORDER BY e.ord;
END;
$$;

-- ===========================================================================
-- Monitoring (Troubleshooting)
-- ===========================================================================

-- One row per worker seen in the last hour. status is the worker's own,
-- except 'dead' for a 'running' worker whose last_heartbeat is older than its
-- heartbeat_timeout_seconds. Raises nothing.
CREATE FUNCTION steadytext_worker_status()
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
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT w.worker_id, w.host, w.pid, w.started_at, w.last_heartbeat,
           w.jobs_completed, w.jobs_failed, w.current_jobs,
           CASE WHEN w.status = 'running'
                 AND w.last_heartbeat < now() - w.heartbeat_timeout_seconds * interval '1 second'
                THEN 'dead' ELSE w.status END
    FROM steadytext_workers AS w
    WHERE w.last_heartbeat >= now() - interval '1 hour'
    ORDER BY w.started_at, w.worker_id
$$;

-- One row per (function_name, status) present in the queue: count; for
-- 'pending', the age of the oldest; for 'completed', the average and 95th
-- percentile of completed_at - started_at over jobs completed in the last
-- hour (NULL otherwise). Raises nothing.
CREATE FUNCTION steadytext_queue_stats()
RETURNS TABLE(
    function_name text,
    status text,
    count bigint,
    oldest_pending_age_seconds double precision,
    avg_processing_seconds double precision,
    p95_processing_seconds double precision
)
LANGUAGE sql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
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
    FROM steadytext_queue AS q
    GROUP BY q.function_name, q.status
    ORDER BY q.function_name, q.status
$$;

-- ===========================================================================
-- Cache
-- ===========================================================================

-- One row: entries, total_bytes (on-disk size of the rows), hits (sum of
-- access_count - 1: reads after the first write), oldest/newest entry
-- (created_at), max_entries (steadytext.cache_max_entries). Raises nothing.
-- SECURITY DEFINER: aggregates only, for roles that cannot read the cache.
CREATE FUNCTION steadytext_cache_stats()
RETURNS TABLE(
    entries bigint,
    total_bytes bigint,
    hits bigint,
    oldest_entry timestamptz,
    newest_entry timestamptz,
    max_entries bigint
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT count(*), coalesce(sum(pg_column_size(c.*)), 0)::bigint,
           coalesce(sum(c.access_count - 1), 0)::bigint,
           min(c.created_at), max(c.created_at), _steadytext_limit('cache_max_entries')
    FROM steadytext_cache AS c
$$;

-- Deletes every cache entry; returns how many. Raises nothing.
CREATE FUNCTION steadytext_cache_clear()
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM steadytext_cache;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

-- Frecency eviction down to steadytext.cache_max_entries (default 10000):
-- deletes the entries with the lowest access_count / (1 + hours since
-- last_accessed) (ties: least recently accessed first). Returns how many were
-- deleted. Concurrent callers (workers call it periodically) queue on an
-- advisory lock, so they never evict more than the excess together.
CREATE FUNCTION steadytext_cache_evict()
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    max_entries bigint := greatest(_steadytext_limit('cache_max_entries'), 0);
    excess bigint;
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('steadytext_cache_evict'));
    SELECT count(*) - max_entries INTO excess FROM steadytext_cache;
    IF excess <= 0 THEN
        RETURN 0;
    END IF;
    DELETE FROM steadytext_cache AS c
    WHERE c.cache_key IN (
        SELECT v.cache_key FROM steadytext_cache AS v
        ORDER BY v.access_count::double precision
                 / (1 + extract(epoch FROM now() - v.last_accessed)::double precision / 3600),
                 v.last_accessed, v.cache_key
        LIMIT excess);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

-- ===========================================================================
-- Roles and privileges (docs/security.md)
-- ===========================================================================
-- Three NOLOGIN group roles; grant them to login roles
-- (CREATE ROLE app LOGIN PASSWORD '...' IN ROLE steadytext_user):
--   steadytext_user    enqueue, wait on, check, cancel and retry its OWN
--                      requests; SELECT on steadytext_queue shows only rows
--                      whose owner_role is the current role (row-level
--                      security); no direct writes, no cache or config access.
--   steadytext_admin   every function and every row; full DML on the tables.
--   steadytext_worker  what a worker does: claim/complete/fail/reclaim/
--                      release rows of steadytext_queue, heartbeat in
--                      steadytext_workers, write steadytext_cache and the
--                      model ids in steadytext_config. No DDL, no DELETE on
--                      the queue.
-- Superusers and the role owning the tables (the installer) see everything.
-- Roles are cluster-wide: a second database's install finds them already
-- there (or created meanwhile by a concurrent install).
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['steadytext_user', 'steadytext_admin', 'steadytext_worker'] LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by an install into another database
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'pg_steadytext: role % does not exist and % may not create it', r, current_user
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = 'Have a superuser run CREATE ROLE steadytext_user NOLOGIN; CREATE ROLE steadytext_admin NOLOGIN; CREATE ROLE steadytext_worker NOLOGIN; then install again.';
        END;
    END LOOP;
END;
$$;

-- Row-level security: a role sees (and, through the functions, waits on,
-- cancels and retries) only the requests it owns; admins and workers all.
-- The owner of the table and superusers are not subject to it.
ALTER TABLE steadytext_queue ENABLE ROW LEVEL SECURITY;
CREATE POLICY steadytext_queue_own ON steadytext_queue
    FOR SELECT USING (owner_role = current_user);
CREATE POLICY steadytext_queue_all ON steadytext_queue
    TO steadytext_admin, steadytext_worker USING (true) WITH CHECK (true);

GRANT USAGE ON SCHEMA @extschema@ TO steadytext_user, steadytext_admin, steadytext_worker;
GRANT SELECT ON steadytext_queue, steadytext_workers TO steadytext_user;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON steadytext_queue, steadytext_cache, steadytext_workers, steadytext_config, steadytext_dead_letter_queue
    TO steadytext_admin;
GRANT SELECT ON steadytext_migrations TO steadytext_admin;
GRANT SELECT, UPDATE ON steadytext_queue TO steadytext_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON steadytext_cache TO steadytext_worker;
GRANT SELECT, INSERT, UPDATE ON steadytext_workers, steadytext_config TO steadytext_worker;

-- Functions: nothing for PUBLIC. steadytext_admin: all. steadytext_user:
-- all but the admin-only ones (clearing/evicting the shared cache, reading
-- the hand-off's connection string) and the helpers only SECURITY DEFINER
-- functions and triggers call. steadytext_worker: what the worker calls.
DO $$
DECLARE
    f record;
    admin_only constant text[] := ARRAY['steadytext_cache_clear', 'steadytext_cache_evict', 'steadytext_dblink_connstr',
                                        '_steadytext_model_id', '_steadytext_check_queue_size',
                                        '_steadytext_queue_stamp', '_steadytext_queue_notify_completed'];
    for_worker constant text[] := ARRAY['steadytext_cache_evict', 'steadytext_limits', '_steadytext_limit',
                                        'steadytext_worker_status', 'steadytext_queue_stats', 'steadytext_cache_stats'];
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig, p.proname AS name FROM pg_proc AS p
        WHERE p.pronamespace = '@extschema@'::regnamespace
          AND (p.proname LIKE 'steadytext\_%' OR p.proname LIKE '\_steadytext\_%')
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f.sig);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_admin', f.sig);
        IF NOT f.name = ANY (admin_only) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_user', f.sig);
        END IF;
        IF f.name = ANY (for_worker) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_worker', f.sig);
        END IF;
    END LOOP;
END;
$$;
