-- pg_steadytext 1.0.0: SteadyText's async AI functions for PostgreSQL.
-- One script, read top to bottom: tables, internal helpers, then the public
-- functions grouped as ../shared/spec/async-functions.md groups them.
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
            (10, 'cache_max_entries',    10000,        'steadytext_cache rows kept by steadytext_cache_evict()')
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

-- Inserts one request: born 'completed' from steadytext_cache on a hit (when
-- use_cache; the cache row's access_count/last_accessed are bumped), else
-- 'pending' with a NOTIFY steadytext_new_job (delivered at commit).
CREATE FUNCTION _steadytext_enqueue(fn text, function_name text, role text, parameters jsonb,
                                    use_cache boolean, priority integer)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
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
                (function_name, parameters, status, priority, result, started_at, completed_at, cache_key, model_id)
            VALUES (_steadytext_enqueue.function_name, _steadytext_enqueue.parameters, 'completed',
                    _steadytext_enqueue.priority, cached, now(), now(), key, model)
            RETURNING q.request_id INTO id;
            RETURN id;
        END IF;
    END IF;
    PERFORM _steadytext_check_queue_size(fn, 1);
    INSERT INTO steadytext_queue AS q (function_name, parameters, priority, cache_key, model_id)
    VALUES (_steadytext_enqueue.function_name, _steadytext_enqueue.parameters,
            _steadytext_enqueue.priority, key, model)
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
-- every item of the batch.
CREATE FUNCTION _steadytext_enqueue_batch(fn text, function_name text, role text, base jsonb,
                                          item_key text, items text[], use_cache boolean, priority integer)
RETURNS uuid[]
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
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
             batch_id, batch_index, cache_key, model_id)
        SELECT _steadytext_enqueue_batch.function_name, it.parameters,
               CASE WHEN hits.result IS NULL THEN 'pending' ELSE 'completed' END,
               _steadytext_enqueue_batch.priority, hits.result,
               now() + (it.ord - 1) * interval '1 microsecond',
               CASE WHEN hits.result IS NOT NULL THEN now() END,
               CASE WHEN hits.result IS NOT NULL THEN now() END,
               batch, (it.ord - 1)::integer, it.cache_key, model
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
