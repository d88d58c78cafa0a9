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
