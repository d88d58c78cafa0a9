import type { Queryable } from './queryable.ts';

export interface HeartbeatState {
  currentJobs: number;
  jobsCompleted: number;
  jobsFailed: number;
  /** Set while shutting down ('stopping'); otherwise the status is kept. */
  status?: 'running' | 'stopping';
}

/**
 * Refreshes last_heartbeat and the job counters. A row another worker marked
 * 'dead' (this process stalled past its heartbeat timeout) comes back to
 * 'running'; its jobs were already reclaimed. A 'stopped' row is left as
 * markWorkerStopped wrote it (a beat still in flight at stop must not put
 * back older counters). Returns false when the row is gone or stopped (the
 * caller registers again unless it is stopping).
 */
export async function heartbeat(db: Queryable, workerId: string, s: HeartbeatState): Promise<boolean> {
  const r = await db.query(
    `UPDATE steadytext_workers SET
       last_heartbeat = now(),
       current_jobs = $2, jobs_completed = $3, jobs_failed = $4,
       status = coalesce($5, CASE WHEN status = 'dead' THEN 'running' ELSE status END)
     WHERE worker_id = $1 AND status <> 'stopped'`,
    [workerId, s.currentJobs, s.jobsCompleted, s.jobsFailed, s.status ?? null],
  );
  return (r.rowCount ?? 0) > 0;
}
