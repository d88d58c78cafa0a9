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
 * 'running'; its jobs were already reclaimed. Returns false when the row is
 * gone (the caller registers again).
 */
export async function heartbeat(db: Queryable, workerId: string, s: HeartbeatState): Promise<boolean> {
  const r = await db.query(
    `UPDATE steadytext_workers SET
       last_heartbeat = now(),
       current_jobs = $2, jobs_completed = $3, jobs_failed = $4,
       status = coalesce($5, CASE WHEN status = 'dead' THEN 'running' ELSE status END)
     WHERE worker_id = $1`,
    [workerId, s.currentJobs, s.jobsCompleted, s.jobsFailed, s.status ?? null],
  );
  return (r.rowCount ?? 0) > 0;
}
