import type { Queryable } from './queryable.ts';

/** Final state of a worker that shut down cleanly; its counters as they ended. */
export async function markWorkerStopped(
  db: Queryable,
  workerId: string,
  counts: { jobsCompleted: number; jobsFailed: number },
): Promise<void> {
  await db.query(
    `UPDATE steadytext_workers
     SET status = 'stopped', current_jobs = 0, last_heartbeat = now(), jobs_completed = $2, jobs_failed = $3
     WHERE worker_id = $1`,
    [workerId, counts.jobsCompleted, counts.jobsFailed],
  );
}
