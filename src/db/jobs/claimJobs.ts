import type { FunctionName, Job } from '../../interfaces.ts';
import type { Queryable } from '../queryable.ts';

/**
 * A claimed job as claimJobs returns it; created_us: created_at in
 * microseconds since the epoch (a Date keeps only milliseconds, too coarse
 * to keep the claim order of jobs enqueued in one statement).
 */
export type ClaimedJob = Job & {
  created_us: number;
  /** The claim stamped started_at (the job starts at once); false: claimed ahead, started_at NULL. */
  started: boolean;
};

/**
 * The claim: pending → processing, the one statement that takes jobs. Up to
 * `limit` runnable jobs, best first (priority DESC, created_at, request_id:
 * the order of steadytext_queue_claim_idx); SKIP LOCKED lets any number of
 * workers claim at once without waiting on or double-claiming each other's
 * rows. Each claim stamps worker_id and a new `attempt` (the late-result
 * guard of every later transition). started_at says when the job really
 * started running, so a claimed-ahead job has none: the first `startNow` jobs
 * in claim order (those that go straight to a free engine slot) get the claim
 * time, the rest NULL until the worker marks each one started just before its
 * engine call (markStarted). reclaimStale tells a lost worker's running jobs
 * (a failed attempt) from the ones it only held in its buffer (no retry
 * counted) by it.
 * `only`: claim jobs of this function alone (the worker tops up an embed
 * batch), and only those at the priority of the most urgent runnable pending
 * job or above: a top-up never takes a job ahead of more urgent work of
 * another function that the next plain claim would take first. (One probe of
 * the claim index finds that priority; the claim's index scan then stops
 * below it.)
 * `served`: claim only jobs of these functions (a worker whose engine refuses
 * some job types leaves them pending for a worker that serves them); null:
 * every function. The filter is checked on the rows the claim index scan
 * returns in claim order, so the index keeps serving the ORDER BY and LIMIT;
 * only a backlog of refused rows ahead of the served ones is read and passed
 * over. max_retries comes back with the worker's default filled in.
 */
export async function claimJobs(
  db: Queryable,
  workerId: string,
  limit: number,
  defaultMaxRetries: number,
  only: FunctionName | null = null,
  served: readonly FunctionName[] | null = null,
  startNow = 0,
): Promise<ClaimedJob[]> {
  // The top-up (`only`) is its own statement, so each keeps a plan of its
  // own (a prepared statement's generic plan could not use the priority bound
  // as an index condition behind an OR).
  const topUp = only
    ? `AND p.function_name = $4::text
               AND p.priority >= (
                 SELECT h.priority FROM steadytext_queue h
                 WHERE h.status = 'pending' AND h.run_at <= now()
                   AND ($5::text[] IS NULL OR h.function_name = ANY($5::text[]))
                 ORDER BY h.priority DESC, h.created_at, h.request_id
                 LIMIT 1)`
    : `AND $4::text IS NULL`;
  const r = await db.query<ClaimedJob>({
    name: only ? 'steadytext_claim_top_up' : 'steadytext_claim_jobs',
    text: `WITH c AS (
             SELECT p.request_id, p.priority, p.created_at FROM steadytext_queue p
             WHERE p.status = 'pending' AND p.run_at <= now()
               AND ($5::text[] IS NULL OR p.function_name = ANY($5::text[]))
               ${topUp}
             ORDER BY p.priority DESC, p.created_at, p.request_id
             LIMIT $2
             FOR UPDATE SKIP LOCKED
           ), n AS (
             SELECT request_id, row_number() OVER (ORDER BY priority DESC, created_at, request_id) AS n FROM c
           )
           UPDATE steadytext_queue q
           SET status = 'processing', worker_id = $1, attempt = q.attempt + 1,
               started_at = CASE WHEN n.n <= $6::int THEN now() END
           FROM n WHERE q.request_id = n.request_id
           RETURNING q.request_id, q.function_name, q.parameters, q.priority, q.retry_count,
                     coalesce(q.max_retries, $3::int) AS max_retries, q.attempt, q.batch_id,
                     q.cache_key, q.timeout_seconds, (extract(epoch FROM q.created_at) * 1000000::numeric)::float8 AS created_us,
                     q.started_at IS NOT NULL AS started`,
    values: [workerId, limit, defaultMaxRetries, only, served, startNow],
  });
  return r.rows.sort(claimOrder);
}

/**
 * The claim order (priority DESC, created_at, request_id), for UPDATE ...
 * RETURNING, which has none of its own, and for the worker's local buffer,
 * which merges several claims.
 */
export function claimOrder(a: ClaimedJob, b: ClaimedJob): number {
  return (
    b.priority - a.priority ||
    a.created_us - b.created_us ||
    (a.request_id < b.request_id ? -1 : a.request_id > b.request_id ? 1 : 0)
  );
}
