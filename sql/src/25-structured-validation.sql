-- Validation of choices, regex patterns and JSON schemas: the structured-output contract.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- choices: 1..max_choices non-empty, distinct strings.
CREATE OR REPLACE FUNCTION _steadytext_check_choices(fn text, choices text[])
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
CREATE OR REPLACE FUNCTION _steadytext_check_pattern(fn text, pattern text)
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
CREATE OR REPLACE FUNCTION _steadytext_check_schema(fn text, schema jsonb)
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
