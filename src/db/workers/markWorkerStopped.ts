import type { Queryable } from '../queryable.ts';

/**
 * Final state of a worker that shut down cleanly (its counters are already
 * exact: completeJobs and failJob keep them).
 */
export async function markWorkerStopped(db: Queryable, workerId: string): Promise<void> {
  await db.query(
    `UPDATE steadytext_workers
     SET status = 'stopped', current_jobs = 0, last_heartbeat = now()
     WHERE worker_id = $1`,
    [workerId],
  );
}
