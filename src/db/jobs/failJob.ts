import { failedAttemptSet } from './failedAttempt.ts';
import type { Queryable } from '../queryable.ts';
import { heldByClaim } from './stillClaimed.ts';

export interface FailOptions {
  error: string;
  /** The worker's default, used where the row's max_retries is NULL. */
  defaultMaxRetries: number;
  /** Backoff before retry n (0-based retry_count): min(base * 2^n, max). */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** False for errors a retry cannot fix (bad input): the job fails at once. */
  retryable: boolean;
  /** Time between the stamp of started_at and the engine call, ms (see completeJobs). */
  waitedMs?: number;
}

export interface FailOutcome {
  /** The row was still ours (same worker and claim); false: the failure was discarded. */
  counted: boolean;
  status?: 'pending' | 'failed';
  retryCount?: number;
  runAt?: Date;
}

/**
 * The failure: processing → pending (retry after backoff) or failed, by the
 * give-up rule (failedAttempt.ts), guarded like completeJobs (still
 * 'processing' under this worker and claim). A job that ends failed adds one
 * to the worker's steadytext_workers.jobs_failed in the same statement.
 */
export async function failJob(
  db: Queryable,
  requestId: string,
  workerId: string,
  attempt: number,
  o: FailOptions,
): Promise<FailOutcome> {
  const r = await db.query<{ status: 'pending' | 'failed'; retry_count: number; run_at: Date }>({
    name: 'steadytext_fail_job',
    text: `WITH f AS (
       UPDATE steadytext_queue q SET
       ${failedAttemptSet({
         defaultMaxRetries: '$5',
         retryable: '$8',
         retryAt: `now() + least($7::float8, $6::float8 * pg_catalog.power(2::float8, q.retry_count::float8)) * interval '1 millisecond'`,
         error: '$4',
       })},
       started_at   = coalesce(q.started_at + $9::float8 * interval '1 millisecond', now())
       WHERE q.request_id = $1 AND ${heldByClaim('$2', '$3')}
       RETURNING q.status, q.retry_count, q.run_at
     ), tally AS (
       UPDATE steadytext_workers w SET jobs_failed = w.jobs_failed + 1
       WHERE w.worker_id = $2 AND EXISTS (SELECT 1 FROM f WHERE f.status = 'failed')
     )
     SELECT status, retry_count, run_at FROM f`,
    values: [
      requestId,
      workerId,
      attempt,
      o.error,
      o.defaultMaxRetries,
      o.backoffBaseMs,
      o.backoffMaxMs,
      o.retryable,
      Math.max(0, o.waitedMs ?? 0),
    ],
  });
  const row = r.rows[0];
  if (!row) return { counted: false };
  return { counted: true, status: row.status, retryCount: row.retry_count, runAt: row.run_at };
}
