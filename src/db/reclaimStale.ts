import { failedAttemptSet } from './failedAttempt.ts';
import type { Queryable } from './queryable.ts';

export interface ReclaimedJob {
  request_id: string;
  status: 'pending' | 'failed';
  lost_worker: string | null;
}

/**
 * Takes back, in one statement, the 'processing' jobs whose worker is gone:
 * its row is missing, 'stopped' or 'dead', or its last_heartbeat is older than
 * its own heartbeat_timeout_seconds. Each such job is a failed attempt (a
 * crash counts, so a job that kills every worker ends 'failed'), recorded by
 * the give-up rule (failedAttempt.ts), runnable again at once. This includes
 * the jobs a lost worker had claimed ahead into its buffer and not started. Workers
 * past their heartbeat timeout are marked 'dead'. `restartOf` also takes back
 * the jobs of an earlier process that ran under the same worker_id.
 */
export async function reclaimStale(
  db: Queryable,
  defaultMaxRetries: number,
  restartOf: string | null = null,
): Promise<ReclaimedJob[]> {
  const r = await db.query<ReclaimedJob>(
    `WITH dead AS (
       UPDATE steadytext_workers SET status = 'dead'
       WHERE status IN ('running', 'stopping')
         AND last_heartbeat < now() - make_interval(secs => heartbeat_timeout_seconds)
     ), stale AS (
       SELECT q.request_id, q.worker_id FROM steadytext_queue q
       LEFT JOIN steadytext_workers w ON w.worker_id = q.worker_id
       WHERE q.status = 'processing'
         AND (w.worker_id IS NULL
              OR w.status IN ('stopped', 'dead')
              OR w.last_heartbeat < now() - make_interval(secs => w.heartbeat_timeout_seconds)
              OR q.worker_id = $2)
       FOR UPDATE OF q SKIP LOCKED
     )
     UPDATE steadytext_queue q SET
       ${failedAttemptSet({
         defaultMaxRetries: '$1',
         retryable: 'true',
         retryAt: 'now()',
         error: `'worker ' || coalesce(stale.worker_id, '?') || ' lost (no heartbeat)'`,
       })}
     FROM stale WHERE q.request_id = stale.request_id
     RETURNING q.request_id, q.status, stale.worker_id AS lost_worker`,
    [defaultMaxRetries, restartOf],
  );
  return r.rows;
}
