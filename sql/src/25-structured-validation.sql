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
