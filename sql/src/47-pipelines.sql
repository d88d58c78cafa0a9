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

-- The scan over pipeline `id`'s source in key order (the backfill, a rerun
-- after a change of model or parameters, the sweep), claimed as it goes: of
-- the rows after the scan's position, the first `n` whose value is not
-- current (no bookkeeping row yet; pending; done from another input, model
-- or version) become worker `worker_id`'s claim at once. A row the pipeline
-- has not seen is inserted 'processing', to be written once more, as done,
-- by the write: one write of its bookkeeping fewer than inserted pending,
-- claimed, then written. Returns the rows claimed (key, claim, where the row
-- lies) in key order, and moves the scan past the last one (or past every
-- row read, when fewer). Reads at most about max(4n, 1000) rows of the
-- source a call, without locks. Waits on another worker's call (the scan's
-- position is the pipeline's row) or on a session at most 100 ms, then
-- gives up for now: a row a session is marking right now is that session's
-- to mark, and the claim of pending rows takes it.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_pipeline_scan_claim(id integer, worker_id text, n integer)
RETURNS TABLE(row_key jsonb, claim bigint, row_tid tid)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $$
#variable_conflict use_column
DECLARE
    me constant text := _steadytext_pipeline_scan_claim.worker_id;
    p @extschema@.steadytext_pipelines;
    budget integer := greatest(4 * n, 1000);
    chunk integer := greatest(n, 1) + 1;  -- one row more: whether the scan ends with this claim
    pos jsonb;
    keys jsonb[];
    hashes text[];
    want_k jsonb[] := '{}';
    want_x xid[] := '{}';
    want_new boolean[] := '{}';
    got_k jsonb[];
    got_x xid[];
    got_new boolean[];
    last bigint;
    finished boolean := false;
    k jsonb;
    c1 bigint;
    t1 tid;
    upd_k jsonb[];
    upd_c bigint[];
    upd_t tid[];
    ins_k jsonb[] := '{}';
    ins_c bigint[] := '{}';
    ins_t tid[] := '{}';
BEGIN
    BEGIN
        SELECT * INTO p FROM @extschema@.steadytext_pipelines AS x WHERE x.pipeline_id = id FOR NO KEY UPDATE;
    EXCEPTION WHEN lock_not_available THEN
        RETURN;  -- a session is changing the pipeline: next time
    END;
    IF NOT FOUND OR NOT p.scanning OR n < 1 THEN
        RETURN;
    END IF;
    pos := p.scan_after;
    LOOP
        EXECUTE format('SELECT array_agg(s.row_key ORDER BY s.n), array_agg(s.input_hash ORDER BY s.n)
                        FROM %s._stxp_%s_scan($1, $2) WITH ORDINALITY AS s(row_key, input_hash, n)', '@extschema@', id)
            INTO keys, hashes USING pos, chunk;
        budget := budget - coalesce(cardinality(keys), 0);
        -- the keys whose value is not current, in key order, as many as are
        -- still wanted (each looked up by its key alone: a join let the
        -- planner of a new pipeline walk all of its rows once per key), and
        -- the version of each known row judged (xmin)
        SELECT array_agg(w.k ORDER BY w.i), array_agg(w.x ORDER BY w.i), array_agg(w.new ORDER BY w.i), max(w.i)
        INTO got_k, got_x, got_new, last
        FROM (SELECT s.k, r.xmin AS x, s.i, r.status IS NULL AS new
              FROM unnest(keys, hashes) WITH ORDINALITY AS s(k, h, i)
              LEFT JOIN LATERAL (SELECT x.xmin, x.status, x.run_at, x.have_hash, x.have_model, x.have_version
                                 FROM @extschema@.steadytext_pipeline_rows AS x
                                 WHERE x.pipeline_id = id AND x.row_key = s.k LIMIT 1) AS r ON true
              WHERE r.status IS NULL
                 OR (r.status = 'pending' AND r.run_at <= now())
                 OR (r.status = 'done' AND (r.have_hash IS DISTINCT FROM s.h OR r.have_model IS DISTINCT FROM p.model_id
                                            OR r.have_version IS DISTINCT FROM p.version))
              ORDER BY s.i
              LIMIT n - cardinality(want_k)) AS w;
        want_k := want_k || coalesce(got_k, '{}');
        want_x := want_x || coalesce(got_x, '{}');
        want_new := want_new || coalesce(got_new, '{}');
        IF cardinality(want_k) >= n THEN
            pos := keys[last];  -- the scan goes on after the last row claimed
            finished := last = cardinality(keys) AND cardinality(keys) < chunk;
            EXIT;
        END IF;
        IF coalesce(cardinality(keys), 0) < chunk THEN
            finished := true;   -- past the last row
            EXIT;
        END IF;
        pos := keys[cardinality(keys)];
        EXIT WHEN budget <= 0;
        chunk := least(budget, greatest(n, 1000));
    END LOOP;
    -- rows the pipeline knows: locked where they lie (one a session holds
    -- is skipped), and claimed if still the version judged above (changed
    -- since, by a session's mark or another worker, it is theirs)
    WITH u AS (SELECT s.k, s.x FROM unnest(want_k, want_x, want_new) AS s(k, x, new) WHERE NOT s.new),
         l AS (SELECT x.tid FROM u
               CROSS JOIN LATERAL (SELECT r.ctid AS tid, r.xmin
                                   FROM @extschema@.steadytext_pipeline_rows AS r
                                   WHERE r.pipeline_id = id AND r.row_key = u.k
                                   LIMIT 1 FOR UPDATE OF r SKIP LOCKED) AS x
               WHERE x.xmin = u.x),
         c AS (UPDATE @extschema@.steadytext_pipeline_rows AS r
               SET status = 'processing', claim = r.claim + 1, worker_id = me,
                   changed_at = CASE WHEN r.status = 'done' THEN now() ELSE r.changed_at END
               FROM l WHERE r.ctid = l.tid
               RETURNING r.row_key, r.claim, r.ctid)
    SELECT array_agg(c.row_key), array_agg(c.claim), array_agg(c.ctid) INTO upd_k, upd_c, upd_t FROM c;
    -- rows it has not seen, inserted as claimed (ON CONFLICT: a session's
    -- change inserted one meanwhile; it is pending, and claimed as such)
    IF true = ANY (want_new) THEN
        BEGIN
            WITH i AS (INSERT INTO @extschema@.steadytext_pipeline_rows AS r (pipeline_id, row_key, status, claim, worker_id)
                       SELECT id, s.k, 'processing', 1, me FROM unnest(want_k, want_new) AS s(k, new) WHERE s.new
                       ON CONFLICT DO NOTHING
                       RETURNING r.row_key, r.claim, r.ctid)
            SELECT coalesce(array_agg(i.row_key), '{}'), coalesce(array_agg(i.claim), '{}'), coalesce(array_agg(i.ctid), '{}')
            INTO ins_k, ins_c, ins_t FROM i;
        EXCEPTION WHEN lock_not_available THEN
            -- a session inserting one of them has not committed: the others one by one
            FOR k IN SELECT s.k FROM unnest(want_k, want_new) AS s(k, new) WHERE s.new LOOP
                BEGIN
                    INSERT INTO @extschema@.steadytext_pipeline_rows AS r (pipeline_id, row_key, status, claim, worker_id)
                    VALUES (id, k, 'processing', 1, me)
                    ON CONFLICT DO NOTHING
                    RETURNING r.claim, r.ctid INTO c1, t1;
                    IF FOUND THEN
                        ins_k := ins_k || k;
                        ins_c := ins_c || c1;
                        ins_t := ins_t || t1;
                    END IF;
                EXCEPTION WHEN lock_not_available THEN
                    NULL;
                END;
            END LOOP;
        END;
    END IF;
    IF finished THEN
        UPDATE @extschema@.steadytext_pipelines AS x SET scanning = false, scan_after = NULL, scan_done_at = now()
        WHERE x.pipeline_id = id;
    ELSE
        UPDATE @extschema@.steadytext_pipelines AS x SET scan_after = pos WHERE x.pipeline_id = id;
    END IF;
    RETURN QUERY
    SELECT w.k, g.c, g.t
    FROM unnest(want_k) WITH ORDINALITY AS w(k, i)
    JOIN unnest(coalesce(upd_k, '{}') || ins_k, coalesce(upd_c, '{}') || ins_c, coalesce(upd_t, '{}') || ins_t) AS g(k, c, t) ON g.k = w.k
    ORDER BY w.i;
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
-- Pending rows first, then the scan's next rows (backfill, rerun, sweep),
-- claimed as it goes (_steadytext_pipeline_scan_claim).
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
    wanted integer;
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
        -- (a scan's rows not claimed yet have waited since the scan began)
        ORDER BY x.priority DESC,
                 least((SELECT min(r.changed_at) FROM @extschema@.steadytext_pipeline_rows AS r
                        WHERE r.pipeline_id = x.pipeline_id AND r.status = 'pending'),
                       CASE WHEN x.scanning THEN x.scan_started_at END) NULLS LAST,
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
        wanted := least(max_rows, p.batch_size);
        -- pending rows first (changes, rows given back), the oldest change
        -- first; the rows locked are updated where they lie (their ctid,
        -- exact while locked; nothing else in the condition, or the planner,
        -- without statistics for a new pipeline, may prefer walking all of
        -- the pipeline's rows, once per claimed row when joining on the key)
        WITH c AS (SELECT r.ctid AS tid FROM @extschema@.steadytext_pipeline_rows AS r
                   WHERE r.pipeline_id = p.pipeline_id AND r.status = 'pending' AND r.run_at <= now()
                   ORDER BY r.changed_at
                   LIMIT wanted
                   FOR UPDATE OF r SKIP LOCKED),
             u AS (UPDATE @extschema@.steadytext_pipeline_rows AS r
                   SET status = 'processing', claim = r.claim + 1, worker_id = _steadytext_pipeline_claim.worker_id
                   FROM c WHERE r.ctid = c.tid
                   RETURNING r.row_key, r.claim, r.changed_at, r.ctid AS tid)
        SELECT array_agg(u.row_key ORDER BY u.changed_at), array_agg(u.claim ORDER BY u.changed_at),
               array_agg(u.tid ORDER BY u.changed_at)
        INTO keys, claims, tids FROM u;
        IF p.scanning AND coalesce(cardinality(keys), 0) < wanted THEN
            -- the rest from the scan (backfill, rerun, sweep), claimed as it goes
            SELECT keys || array_agg(s.row_key ORDER BY s.n), claims || array_agg(s.claim ORDER BY s.n),
                   tids || array_agg(s.row_tid ORDER BY s.n)
            INTO keys, claims, tids
            FROM @extschema@._steadytext_pipeline_scan_claim(p.pipeline_id, _steadytext_pipeline_claim.worker_id,
                                                            wanted - coalesce(cardinality(keys), 0))
                 WITH ORDINALITY AS s(row_key, claim, row_tid, n);
        END IF;
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
    seqscan text;
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
    -- trigger of this very write, is not there any more: its change stands).
    -- Read where the rows lie, never by a sequential scan: while
    -- steadytext_pipeline_rows is small (up to about a hundred pages) the
    -- planner prefers reading all of it, a random page read costing more in
    -- its model than a row read in order. Measured: this update read all
    -- 3,000 rows of a pipeline to find its 100, and writes took twice the
    -- time. This statement only: the write runs its destination's triggers,
    -- whose plans are the user's.
    seqscan := pg_catalog.current_setting('enable_seqscan');
    PERFORM pg_catalog.set_config('enable_seqscan', 'off', true);
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
    PERFORM pg_catalog.set_config('enable_seqscan', seqscan, true);
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
