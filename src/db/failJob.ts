import type { Queryable } from './queryable.ts';

export interface FailOptions {
  error: string;
  /** The worker's default, used where the row's max_retries is NULL. */
  defaultMaxRetries: number;
  /** Backoff before retry n (0-based retry_count): min(base * 2^n, max). */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** False for errors a retry cannot fix (bad input): the job fails at once. */
  retryable: boolean;
}

export interface FailOutcome {
  /** The row was still ours (same worker and claim); false: the failure was discarded. */
  counted: boolean;
  status?: 'pending' | 'failed';
  retryCount?: number;
  runAt?: Date;
}

/**
 * Records a failed attempt, guarded like completeJob. While retries remain:
 * back to 'pending' with retry_count + 1 and run_at = now() + backoff, the
 * error kept. Otherwise: 'failed' with failed_at, completed_at, error and the
 * max_retries that applied.
 */
// SET expressions all see the row as it was before this UPDATE.
const GIVE_UP = `(NOT $8::boolean OR q.retry_count >= coalesce(q.max_retries, $5::int))`;

export async function failJob(
  db: Queryable,
  requestId: string,
  workerId: string,
  attempt: number,
  o: FailOptions,
): Promise<FailOutcome> {
  const r = await db.query<{ status: 'pending' | 'failed'; retry_count: number; run_at: Date }>(
    `UPDATE steadytext_queue q SET
       status       = CASE WHEN ${GIVE_UP} THEN 'failed' ELSE 'pending' END,
       retry_count  = CASE WHEN ${GIVE_UP} THEN q.retry_count ELSE q.retry_count + 1 END,
       run_at       = CASE WHEN ${GIVE_UP} THEN q.run_at
                      ELSE now() + least($7::float8, $6::float8 * 2 ^ q.retry_count) * interval '1 millisecond' END,
       failed_at    = CASE WHEN ${GIVE_UP} THEN now() END,
       completed_at = CASE WHEN ${GIVE_UP} THEN now() END,
       max_retries  = coalesce(q.max_retries, $5::int),
       error        = $4
     WHERE q.request_id = $1 AND q.status = 'processing' AND q.worker_id = $2 AND q.attempt = $3
     RETURNING q.status, q.retry_count, q.run_at`,
    [requestId, workerId, attempt, o.error, o.defaultMaxRetries, o.backoffBaseMs, o.backoffMaxMs, o.retryable],
  );
  const row = r.rows[0];
  if (!row) return { counted: false };
  return { counted: true, status: row.status, retryCount: row.retry_count, runAt: row.run_at };
}
