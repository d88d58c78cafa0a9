// The dashboard's reads and its one write, one statement each, on the
// dashboard's own connection (its search_path finds the schema; bare names).
// Through pg_steadytext's functions: the queue (steadytext_queue_stats()), the
// workers (steadytext_worker_status()) and the retry
// (steadytext_retry_failed(request_id)), the pipelines
// (steadytext_pipeline_status(), docs/pipelines.md). One read is direct: the list of
// failed requests selects from the steadytext_queue table, because no
// function lists failed requests with their errors. That table is part of the
// documented surface (SELECT granted to steadytext_user, docs/security.md)
// and its row security applies, so a role sees only the requests it owns,
// as through steadytext_check_async.
import type { Queryable } from '../db/queryable.ts';

export { queueStats, type QueueStatsRow } from '../db/queue/queueStats.ts';
export { pipelineStatusIfAny, type PipelineStatusRow } from '../db/pipelines/pipelineStatus.ts';

export interface WorkerRow {
  worker_id: string;
  host: string;
  pid: number;
  started_at: string;
  last_heartbeat: string;
  heartbeat_age_seconds: number;
  jobs_completed: number;
  jobs_failed: number;
  current_jobs: number;
  status: string;
}

/** steadytext_worker_status(): workers seen in the last hour. */
export async function workerStatus(db: Queryable): Promise<WorkerRow[]> {
  const r = await db.query<WorkerRow>(
    `SELECT worker_id, host, pid, started_at, last_heartbeat,
            extract(epoch FROM now() - last_heartbeat)::float8 AS heartbeat_age_seconds,
            jobs_completed::int AS jobs_completed, jobs_failed::int AS jobs_failed, current_jobs, status
     FROM steadytext_worker_status()`,
  );
  return r.rows;
}

export interface FailedJobRow {
  request_id: string;
  function_name: string;
  error: string | null;
  failed_at: string | null;
  retry_count: number;
  /** The prompt, text or query the request was about (first 120 characters). */
  input: string | null;
}

/** The most recently failed requests with their errors (read from steadytext_queue directly; see the top). */
export async function failedJobs(db: Queryable, limit = 50): Promise<FailedJobRow[]> {
  const r = await db.query<FailedJobRow>(
    `SELECT request_id, function_name, error, failed_at, retry_count,
            left(coalesce(parameters->>'prompt', parameters->>'text_input', parameters->>'query'), 120) AS input
     FROM steadytext_queue
     WHERE status = 'failed'
     ORDER BY failed_at DESC NULLS LAST, request_id
     LIMIT $1`,
    [limit],
  );
  return r.rows;
}

/** steadytext_retry_failed(request_id): true when the failed request is pending again. */
export async function retryFailed(db: Queryable, requestId: string): Promise<boolean> {
  const r = await db.query<{ retried: boolean }>(`SELECT steadytext_retry_failed($1::uuid) AS retried`, [requestId]);
  return r.rows[0].retried;
}
