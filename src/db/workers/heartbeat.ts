import type { Queryable } from '../queryable.ts';

export interface HeartbeatState {
  currentJobs: number;
  /** Set while shutting down ('stopping'); otherwise the status is kept. */
  status?: 'running' | 'stopping';
}

/**
 * Refreshes last_heartbeat and current_jobs (jobs_completed and jobs_failed
 * are counted by the statements that record the outcomes: completeJobs,
 * failJob). A row another worker marked 'dead' (this process stalled past
 * its heartbeat timeout) comes back to 'running'; its jobs were already
 * reclaimed. A 'stopped' row is left as markWorkerStopped wrote it. Returns
 * false when the row is gone or stopped (the caller registers again unless
 * it is stopping).
 */
export async function heartbeat(db: Queryable, workerId: string, s: HeartbeatState): Promise<boolean> {
  const r = await db.query(
    `UPDATE steadytext_workers SET
       last_heartbeat = now(),
       current_jobs = $2,
       status = coalesce($3, CASE WHEN status = 'dead' THEN 'running' ELSE status END)
     WHERE worker_id = $1 AND status <> 'stopped'`,
    [workerId, s.currentJobs, s.status ?? null],
  );
  return (r.rowCount ?? 0) > 0;
}
