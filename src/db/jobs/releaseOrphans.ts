import { RELEASE_SET } from './releaseJobs.ts';
import type { Queryable } from '../queryable.ts';

/**
 * Jobs 'processing' under this (live) worker that it does not hold (neither
 * running, buffered nor being stored) go back to 'pending' by the release
 * rule (releaseJobs.ts). They appear when a reply
 * is lost after its statement committed (the server went down in between): a
 * claim whose reply never arrived (withRetries ran it again and claimed other
 * jobs), or a result or failure the worker then could not record. The
 * worker's own heartbeats would keep reclaimStale from ever taking them back.
 * Safe only while no claim by this worker is in flight: the producer runs
 * it between its own claims, with the request ids the worker holds. Returns
 * the ids it released.
 */
export async function releaseOrphans(db: Queryable, workerId: string, running: string[]): Promise<string[]> {
  const r = await db.query<{ request_id: string }>(
    `WITH orphan AS (
       SELECT request_id FROM steadytext_queue
       WHERE status = 'processing' AND worker_id = $1::text AND request_id <> ALL($2::uuid[])
       FOR UPDATE SKIP LOCKED
     )
     UPDATE steadytext_queue q
     SET ${RELEASE_SET}, error = 'released: worker ' || $1::text || ' lost this claim (reply lost with the connection)'
     FROM orphan WHERE q.request_id = orphan.request_id
     RETURNING q.request_id`,
    [workerId, running],
  );
  return r.rows.map((row) => row.request_id);
}
