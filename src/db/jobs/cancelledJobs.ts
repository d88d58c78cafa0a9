import type { Queryable } from '../queryable.ts';

export interface Claim {
  requestId: string;
  /** The claim (`attempt`) this worker holds. */
  attempt: number;
}

/**
 * The worker's half of cancel (the other half, steadytext_cancel_async, marks
 * the row 'cancelled' and sends NOTIFY steadytext_cancelled). A NOTIFY proves
 * nothing (any login may send one on any channel), so before aborting a job
 * the worker asks the row itself: of `claims`, the request ids whose row is
 * 'cancelled' while still carrying this worker's claim (worker_id, attempt).
 */
export async function cancelledJobs(db: Queryable, workerId: string, claims: Claim[]): Promise<Set<string>> {
  if (claims.length === 0) return new Set();
  const r = await db.query<{ request_id: string }>({
    name: 'steadytext_cancelled_jobs',
    text: `SELECT q.request_id FROM steadytext_queue q
           JOIN unnest($2::uuid[], $3::int[]) AS c(request_id, attempt) ON c.request_id = q.request_id
           WHERE q.status = 'cancelled' AND q.worker_id = $1 AND q.attempt = c.attempt`,
    values: [workerId, claims.map((c) => c.requestId), claims.map((c) => c.attempt)],
  });
  return new Set(r.rows.map((row) => row.request_id));
}
