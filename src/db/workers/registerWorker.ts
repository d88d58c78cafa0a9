import type { Queryable } from '../queryable.ts';

export interface WorkerRegistration {
  workerId: string;
  host: string;
  pid: number;
  concurrency: number;
  heartbeatTimeoutSeconds: number;
  version: string;
  models: Record<string, string>;
  /** The job types it claims; null: every type (steadytext_workers.served_functions). */
  servedFunctions: readonly string[] | null;
  /** The counters to start from: 0 at start; this process's own when its row went missing meanwhile. */
  jobsCompleted?: number;
  jobsFailed?: number;
}

/** Inserts (or revives, for a fixed --worker-id) this worker's row as 'running'. */
export async function registerWorker(db: Queryable, w: WorkerRegistration): Promise<void> {
  await db.query(
    `INSERT INTO steadytext_workers
       (worker_id, host, pid, started_at, last_heartbeat, status, concurrency,
        heartbeat_timeout_seconds, jobs_completed, jobs_failed, current_jobs, version, models, served_functions)
     VALUES ($1, $2, $3, now(), now(), 'running', $4, $5, $9, $10, 0, $6, $7, $8)
     ON CONFLICT (worker_id) DO UPDATE SET
       host = excluded.host, pid = excluded.pid, started_at = now(), last_heartbeat = now(),
       status = 'running', concurrency = excluded.concurrency,
       heartbeat_timeout_seconds = excluded.heartbeat_timeout_seconds,
       jobs_completed = excluded.jobs_completed, jobs_failed = excluded.jobs_failed, current_jobs = 0,
       version = excluded.version, models = excluded.models, served_functions = excluded.served_functions`,
    [
      w.workerId, w.host, w.pid, w.concurrency, w.heartbeatTimeoutSeconds, w.version, JSON.stringify(w.models), w.servedFunctions,
      w.jobsCompleted ?? 0, w.jobsFailed ?? 0,
    ],
  );
}
