-- Limits and argument validation shared by every enqueue function.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Internal helpers: limits, argument validation, model ids
-- ===========================================================================
-- Internal helpers start with an underscore; they are not part of the spec's
-- surface and may change between versions.

-- Every size and count limit, in one place. Each is overridable by the GUC
-- steadytext.<name> (SET, ALTER DATABASE/ROLE/SYSTEM). Returns one row per
-- limit with its effective value. Raises 22023 if a GUC holds a non-integer.
CREATE OR REPLACE FUNCTION steadytext_limits()
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
CREATE OR REPLACE FUNCTION _steadytext_limit(limit_name text)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT l.value FROM steadytext_limits() AS l WHERE l.name = limit_name
$$;

-- A required text argument: NULL -> 22004, empty -> 22023, too big -> 54000.
CREATE OR REPLACE FUNCTION _steadytext_check_text(fn text, arg text, val text, max_bytes bigint)
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
CREATE OR REPLACE FUNCTION _steadytext_check_not_null(fn text, arg text, is_null boolean)
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
CREATE OR REPLACE FUNCTION _steadytext_check_max_tokens(fn text, max_tokens integer)
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
CREATE OR REPLACE FUNCTION _steadytext_check_seed(fn text, seed integer)
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
CREATE OR REPLACE FUNCTION _steadytext_check_text_array(
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

-- Raises 54000 (enqueueing nothing) when adding `adding` requests would take
-- pending + processing past steadytext.max_queue_size (unset or 0: unlimited).
-- The count is bounded: it never reads more than max_queue_size + 1 rows.
CREATE OR REPLACE FUNCTION _steadytext_check_queue_size(fn text, adding bigint)
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
