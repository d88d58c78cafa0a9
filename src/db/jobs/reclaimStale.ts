import { failedAttemptSet } from './failedAttempt.ts';
import { RELEASE_SET } from './releaseJobs.ts';
import type { Queryable } from '../queryable.ts';

export interface ReclaimedJob {
  request_id: string;
  status: 'pending' | 'failed';
  lost_worker: string | null;
  /** True: the job was running (a failed attempt counted); false: only claimed ahead (released). */
  started: boolean;
}

export interface ReclaimOptions {
  /** Also take back the jobs of an earlier process that ran under this worker_id (a worker's start). */
  restartOf?: string | null;
  /**
   * The worker running this reclaim pass: its own jobs are never taken, and
   * its own row never marked 'dead'. The process running the statement is
   * alive, so a late heartbeat of its own means only that the heartbeat was
   * slow (a loaded machine, a slow connection); taking back its jobs would
   * put the ones it holds claimed ahead back into the queue, to be claimed
   * again behind later work, out of claim order. Other workers still reclaim
   * from it by the heartbeat rule; the worker then drops, unstarted, every
   * buffered job whose claim it lost (markStarted finds it no longer ours).
   */
  self?: string | null;
}

/**
 * Takes back, in one statement, the 'processing' jobs whose worker is gone:
 * its row is missing, 'stopped' or 'dead', or its last_heartbeat is older than
 * its own heartbeat_timeout_seconds. A job that was running (started_at set:
 * its claim or markStarted stamped it just before its engine call) is a failed
 * attempt (a crash counts, so a job that kills every worker ends 'failed'),
 * recorded by the give-up rule (failedAttempt.ts), runnable again at once. A
 * job the lost worker only held claimed ahead in its buffer (started_at NULL)
 * never ran: it goes back to 'pending' by the release rule, no retry counted
 * (its `attempt` stays, so a late result of that claim is still refused).
 * Workers past their heartbeat timeout are marked 'dead'.
 */
export async function reclaimStale(db: Queryable, defaultMaxRetries: number, o: ReclaimOptions = {}): Promise<ReclaimedJob[]> {
  const r = await db.query<ReclaimedJob>(
    `WITH dead AS (
       UPDATE steadytext_workers SET status = 'dead'
       WHERE status IN ('running', 'stopping')
         AND _steadytext_heartbeat_lost(last_heartbeat, heartbeat_timeout_seconds, now())
         AND worker_id IS DISTINCT FROM $3
     ), stale AS (
       SELECT q.request_id, q.worker_id, q.started_at IS NOT NULL AS started FROM steadytext_queue q
       LEFT JOIN steadytext_workers w ON w.worker_id = q.worker_id
       WHERE q.status = 'processing'
         AND q.worker_id IS DISTINCT FROM $3
         AND (w.worker_id IS NULL
              OR w.status IN ('stopped', 'dead')
              OR _steadytext_heartbeat_lost(w.last_heartbeat, w.heartbeat_timeout_seconds, now())
              OR q.worker_id = $2)
       FOR UPDATE OF q SKIP LOCKED
     ), failed AS (
       UPDATE steadytext_queue q SET
         ${failedAttemptSet({
           defaultMaxRetries: '$1',
           retryable: 'true',
           retryAt: 'now()',
           error: `'worker ' || coalesce(stale.worker_id, '?') || ' lost (no heartbeat)'`,
         })}
       FROM stale WHERE q.request_id = stale.request_id AND stale.started
       RETURNING q.request_id, q.status, stale.worker_id AS lost_worker, true AS started
     ), released AS (
       UPDATE steadytext_queue q SET ${RELEASE_SET}
       FROM stale WHERE q.request_id = stale.request_id AND NOT stale.started
       RETURNING q.request_id, q.status, stale.worker_id AS lost_worker, false AS started
     )
     SELECT * FROM failed UNION ALL SELECT * FROM released`,
    [defaultMaxRetries, o.restartOf ?? null, o.self ?? null],
  );
  return r.rows;
}
