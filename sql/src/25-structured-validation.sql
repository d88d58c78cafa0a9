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
-- (src/engine/regexGrammar.ts) is the same, and test/structured/corpus.test.ts
-- proves both give the same verdict, SQLSTATE and character position:
--   literals; \d \w \s \D \W \S \n \t \r \f \v \uHHHH; any escaped
--   non-alphanumeric character; [...] classes with ranges and negation (a ']'
--   first in a class is a literal); .; (...) and (?:...); |;
--   * + ? {n} {n,} {,m} {n,m}; ^ only at the very start, $ only at the very end.
-- Returns NULLs for a pattern in the dialect, else (sqlstate, pos, what):
--   0A000 a construct a grammar cannot express; 22023 a malformed pattern;
--   54000 a count above 1000, or more than 10000 character positions once
--   counted repeats are multiplied out. One pass, no recursion, no regex
--   matching on the pattern as a whole: linear in its length.
CREATE OR REPLACE FUNCTION _steadytext_structured_regex_error(
    pattern text, OUT sqlstate text, OUT pos integer, OUT what text)
RETURNS record
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_repeat constant integer := 1000;
    max_weight constant numeric := 10000;
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

    WHILE i <= last LOOP
        ch := c[i];
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
            w := last_w * coalesce(qmax, qmin + 1);
            seq_sum := seq_sum - last_w + w;
            last_w := w;
            IF i <= last AND c[i] = '?' THEN
                sqlstate := '0A000'; pos := i; what := 'a lazy quantifier'; RETURN;
            ELSIF i <= last AND c[i] = '+' THEN
                sqlstate := '0A000'; pos := i; what := 'a possessive quantifier'; RETURN;
            END IF;
            CONTINUE;
        END IF;

        IF ch = '|' THEN
            alt_sum := alt_sum + seq_sum; seq_sum := 0; last_w := NULL; quantified := false;
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
            alt_sum := 0; seq_sum := 0; last_w := NULL; quantified := false;
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
            open_pos := open_pos[1:depth - 1];
            saved_alt := saved_alt[1:depth - 1];
            saved_seq := saved_seq[1:depth - 1];
            last_w := w; quantified := false;
            i := i + 1;
            CONTINUE;
        ELSIF ch IN ('*', '+', '?', '{') THEN
            sqlstate := '22023'; pos := i; what := format('''%s'' with nothing to repeat', ch); RETURN;
        ELSIF ch = '^' THEN
            sqlstate := '0A000'; pos := i; what := 'the anchor ''^'' anywhere but the very start'; RETURN;
        ELSIF ch = '$' THEN
            sqlstate := '0A000'; pos := i; what := 'the anchor ''$'' anywhere but the very end'; RETURN;
        ELSIF ch = '[' THEN
            j := i;  -- where the class starts
            i := i + 1;
            negate := false;
            IF i <= last AND c[i] = '^' THEN negate := true; i := i + 1; END IF;
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
                        ELSIF ch = 'D' THEN esc_set := all_chars - digit;
                        ELSIF ch = 'w' THEN esc_set := word;
                        ELSIF ch = 'W' THEN esc_set := all_chars - word;
                        ELSIF ch = 's' THEN esc_set := space;
                        ELSIF ch = 'S' THEN esc_set := all_chars - space;
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
        ELSIF ch = '\' THEN
            IF i + 1 > n THEN
                sqlstate := '22023'; pos := i; what := 'a trailing backslash'; RETURN;
            END IF;
            ch := c[i + 1];
            IF ch = 'u' THEN
                a := array_to_string(c[i + 2:i + 5], '');
                IF a !~ '^[0-9A-Fa-f]{4}$' THEN
                    sqlstate := '22023'; pos := i; what := '\u not followed by 4 hex digits'; RETURN;
                END IF;
                esc_cp := ('x' || lpad(a, 8, '0'))::bit(32)::integer;
                IF esc_cp = 0 OR esc_cp BETWEEN 55296 AND 57343 THEN
                    sqlstate := '22023'; pos := i; what := format('\u%s is not a character text can hold', a); RETURN;
                END IF;
                i := i + 4;
            ELSIF ch IN ('d', 'w', 's', 'D', 'W', 'S', 'n', 't', 'r', 'f', 'v') THEN
                NULL;
            ELSIF ch IN ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9') THEN
                sqlstate := '0A000'; pos := i; what := format('a backreference or numeric escape (\%s)', ch); RETURN;
            ELSIF (ascii(ch) BETWEEN 65 AND 90 OR ascii(ch) BETWEEN 97 AND 122) THEN
                sqlstate := '0A000'; pos := i; what := format('the escape \%s', ch); RETURN;
            END IF;
            i := i + 2;
        ELSE
            i := i + 1;  -- a literal: ., ], } and every other character
        END IF;
        -- an atom of weight 1 ended
        last_w := 1; seq_sum := seq_sum + 1; quantified := false;
    END LOOP;

    depth := cardinality(open_pos);
    IF depth > 0 THEN
        sqlstate := '22023'; pos := open_pos[depth]; what := 'an unclosed group'; RETURN;
    END IF;
    w := alt_sum + seq_sum;
    IF w > max_weight THEN
        sqlstate := '54000';
        what := format('an expansion to %s character positions (counted repeats multiplied out), over the limit of %s',
                       w, max_weight);
    END IF;
END;
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

-- schema: a JSON Schema object (or true) the engine can turn into a grammar.
-- Walks the document iteratively (a queue, no recursion): $ref anywhere ->
-- 0A000; nesting deeper than max_schema_depth or bigger than
-- max_schema_bytes -> 54000; malformed type / properties / required / enum /
-- subschemas -> 22023; NULL -> 22004.
CREATE OR REPLACE FUNCTION _steadytext_check_schema(fn text, schema jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_bytes bigint := @extschema@._steadytext_limit('max_schema_bytes');
    max_depth bigint := @extschema@._steadytext_limit('max_schema_depth');
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
