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
