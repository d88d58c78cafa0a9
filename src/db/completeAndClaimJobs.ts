import type { Job } from '../interfaces.ts';
import { claimOrder } from './claimJobs.ts';
import { completionColumns, FILL_CACHE_FROM_DONE, type Completion } from './completeJobs.ts';
import type { Queryable } from './queryable.ts';

export interface Exchange {
  /** Request ids whose completion counted (see completeJobs). */
  counted: Set<string>;
  /**
   * Request ids whose row another session holds locked (a client idle in
   * transaction after SELECT ... FOR UPDATE): not stored yet, to be sent
   * again. Skipping them keeps one locked row from stalling the whole worker.
   */
  busy: Set<string>;
  /** Newly claimed jobs, best first (see claimJobs). */
  claimed: Job[];
}

/**
 * completeJobs and claimJobs in one statement, so one commit both stores the
 * results of finished jobs and takes the next ones: a busy worker pays about
 * one commit per job instead of two. The two halves touch disjoint rows (the
 * completed ones are 'processing' under this worker, the claimed ones
 * 'pending'); each keeps its own guard and order exactly as the separate
 * statements do, and the completion trigger still sends one
 * steadytext_completed NOTIFY per completed row.
 */
export async function completeAndClaimJobs(
  db: Queryable,
  workerId: string,
  completions: Completion[],
  limit: number,
  defaultMaxRetries: number,
): Promise<Exchange> {
  const r = await db.query<Job & { created_at: Date; completed: boolean | null }>({
    name: 'steadytext_complete_and_claim_jobs',
    text: `WITH input AS (
             SELECT * FROM unnest($2::uuid[], $3::int[], $4::text[], $5::text[]) AS i(request_id, attempt, result, producer)
           ), mine AS (
             SELECT q.request_id FROM steadytext_queue q JOIN input i ON q.request_id = i.request_id
             WHERE q.status = 'processing' AND q.worker_id = $1 AND q.attempt = i.attempt
             FOR UPDATE OF q SKIP LOCKED
           ), done AS (
             UPDATE steadytext_queue q
             SET status = 'completed', result = i.result, error = NULL, completed_at = now()
             FROM input i JOIN mine m ON m.request_id = i.request_id
             WHERE q.request_id = i.request_id AND q.status = 'processing' AND q.worker_id = $1 AND q.attempt = i.attempt
             RETURNING q.request_id, q.function_name, q.parameters, q.cache_key, q.model_id, i.producer, i.result
           ), busy AS (
             SELECT i.request_id FROM input i
             WHERE NOT EXISTS (SELECT 1 FROM mine m WHERE m.request_id = i.request_id)
               AND EXISTS (SELECT 1 FROM steadytext_queue q WHERE q.request_id = i.request_id
                           AND q.status = 'processing' AND q.worker_id = $1 AND q.attempt = i.attempt)
           ), ${FILL_CACHE_FROM_DONE}, c AS (
             SELECT request_id FROM steadytext_queue
             WHERE status = 'pending' AND run_at <= now()
             ORDER BY priority DESC, created_at, request_id
             LIMIT $6
             FOR UPDATE SKIP LOCKED
           ), claimed AS (
             UPDATE steadytext_queue q
             SET status = 'processing', started_at = now(), worker_id = $1, attempt = q.attempt + 1
             FROM c WHERE q.request_id = c.request_id
             RETURNING q.request_id, q.function_name, q.parameters, q.priority, q.retry_count,
                       coalesce(q.max_retries, $7::int) AS max_retries, q.attempt, q.batch_id,
                       q.cache_key, q.timeout_seconds, q.created_at
           )
           SELECT true AS completed, request_id, NULL::text AS function_name, NULL::jsonb AS parameters,
                  NULL::int AS priority, NULL::int AS retry_count, NULL::int AS max_retries, NULL::int AS attempt,
                  NULL::uuid AS batch_id, NULL::text AS cache_key, NULL::int AS timeout_seconds,
                  NULL::timestamptz AS created_at
           FROM done
           UNION ALL
           SELECT NULL, request_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM busy
           UNION ALL
           SELECT false, * FROM claimed`,
    values: [workerId, ...completionColumns(completions), limit, defaultMaxRetries],
  });
  const counted = new Set<string>();
  const busy = new Set<string>();
  const claimed: Array<Job & { created_at: Date }> = [];
  for (const { completed, ...row } of r.rows) {
    if (completed === null) busy.add(row.request_id);
    else if (completed) counted.add(row.request_id);
    else claimed.push(row);
  }
  return { counted, busy, claimed: claimed.sort(claimOrder) };
}
