import type { Queryable } from './queryable.ts';

/**
 * On shutdown: this worker's unfinished jobs go back to 'pending', runnable at
 * once, without counting a retry (the job did not fail; the worker left).
 * Wakes other workers with NOTIFY steadytext_new_job when it released any.
 * Returns how many it released.
 */
export async function releaseJobs(db: Queryable, workerId: string, requestIds: string[]): Promise<number> {
  const r = await db.query<{ n: number }>(
    `WITH released AS (
       UPDATE steadytext_queue SET status = 'pending', run_at = now()
       WHERE status = 'processing' AND worker_id = $1 AND request_id = ANY($2::uuid[])
       RETURNING 1
     ), woken AS (
       SELECT pg_notify('steadytext_new_job', '') FROM (SELECT 1) one
       WHERE EXISTS (SELECT 1 FROM released)
     )
     SELECT (SELECT count(*) FROM released)::int AS n, (SELECT count(*) FROM woken) AS _`,
    [workerId, requestIds],
  );
  return r.rows[0].n;
}
