import type { Job } from '../interfaces.ts';
import type { Queryable } from './queryable.ts';

/**
 * Claims up to `limit` runnable jobs in one statement, best first (priority
 * DESC, created_at, request_id: the order of steadytext_queue_claim_idx).
 * SKIP LOCKED lets any number of workers claim at once without waiting on or
 * double-claiming each other's rows. max_retries comes back with the worker's
 * default filled in.
 */
export async function claimJobs(db: Queryable, workerId: string, limit: number, defaultMaxRetries: number): Promise<Job[]> {
  const r = await db.query<Job & { created_at: Date }>({
    name: 'steadytext_claim_jobs',
    text: `WITH c AS (
             SELECT request_id FROM steadytext_queue
             WHERE status = 'pending' AND run_at <= now()
             ORDER BY priority DESC, created_at, request_id
             LIMIT $2
             FOR UPDATE SKIP LOCKED
           )
           UPDATE steadytext_queue q
           SET status = 'processing', started_at = now(), worker_id = $1, attempt = q.attempt + 1
           FROM c WHERE q.request_id = c.request_id
           RETURNING q.request_id, q.function_name, q.parameters, q.priority, q.retry_count,
                     coalesce(q.max_retries, $3::int) AS max_retries, q.attempt, q.batch_id,
                     q.cache_key, q.timeout_seconds, q.created_at`,
    values: [workerId, limit, defaultMaxRetries],
  });
  return r.rows.sort(claimOrder);
}

/** UPDATE ... RETURNING has no order of its own: the claim order, restored. */
export function claimOrder(a: Job & { created_at: Date }, b: Job & { created_at: Date }): number {
  return (
    b.priority - a.priority ||
    a.created_at.getTime() - b.created_at.getTime() ||
    (a.request_id < b.request_id ? -1 : a.request_id > b.request_id ? 1 : 0)
  );
}
