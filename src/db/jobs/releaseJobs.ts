import type { Queryable } from '../queryable.ts';

/**
 * The release: processing → pending, runnable at once, no retry counted (the
 * job did not fail; the worker let it go). The one SET list of releaseJobs
 * and releaseOrphans, for an UPDATE of steadytext_queue AS q.
 */
export const RELEASE_SET = `status = 'pending', run_at = now()`;

/**
 * On shutdown: this worker's unfinished jobs (running, or claimed ahead into
 * its buffer) go back to 'pending' by the release rule. Wakes other workers
 * with NOTIFY steadytext_new_job when it released any. Returns how many.
 */
export async function releaseJobs(db: Queryable, workerId: string, requestIds: string[]): Promise<number> {
  const r = await db.query<{ n: number }>(
    `WITH released AS (
       UPDATE steadytext_queue q SET ${RELEASE_SET}
       WHERE q.status = 'processing' AND q.worker_id = $1 AND q.request_id = ANY($2::uuid[])
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
