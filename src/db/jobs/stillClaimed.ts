import type { Queryable } from '../queryable.ts';

/**
 * The late-result guard, one home: row `q` (steadytext_queue) is still
 * 'processing' under the worker `worker` and the claim `attempt` (SQL
 * expressions: parameters or columns). Every statement that acts on a held
 * job by its claim (completeJobs, markStarted, failJob, stillClaimed) puts it
 * on the rows it writes, so a cancelled, timed-out or reclaimed job's late
 * write changes nothing.
 */
export function heldByClaim(worker = '$1', attempt = 'i.attempt'): string {
  return `q.status = 'processing' AND q.worker_id = ${worker} AND q.attempt = ${attempt}`;
}

/**
 * Of `claims` (request id + attempt), the ids still 'processing' under this
 * worker and claim: after a statement with SKIP LOCKED passed some rows over,
 * it tells a row another session holds locked (still ours: try again) from
 * one that is no longer this claim's (cancelled, reclaimed). Used by
 * completeJobs and markStarted.
 */
export async function stillClaimed(
  db: Queryable,
  workerId: string,
  claims: Array<{ requestId: string; attempt: number }>,
): Promise<Set<string>> {
  if (claims.length === 0) return new Set();
  const r = await db.query<{ request_id: string }>({
    name: 'steadytext_still_claimed',
    text: `SELECT q.request_id FROM unnest($2::uuid[], $3::int[]) AS i(request_id, attempt)
           JOIN steadytext_queue q ON q.request_id = i.request_id
           WHERE ${heldByClaim()}`,
    values: [workerId, claims.map((c) => c.requestId), claims.map((c) => c.attempt)],
  });
  return new Set(r.rows.map((row) => row.request_id));
}
