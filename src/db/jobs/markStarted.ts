import type { Queryable } from '../queryable.ts';
import { heldByClaim, stillClaimed } from './stillClaimed.ts';

export interface StartMark {
  requestId: string;
  /** The claim (`attempt`) the worker holds. */
  attempt: number;
}

export interface Marked {
  /** Request ids now marked started (started_at = now()) under this worker's claim. */
  started: Set<string>;
  /**
   * Still this worker's claim, but the row is locked by another session (a
   * client idle in transaction after SELECT ... FOR UPDATE): not marked yet,
   * to be tried again. Skipping them keeps one locked row from holding back
   * the start of the others.
   */
  busy: Set<string>;
}

/**
 * The start: a claimed-ahead job (started_at NULL, see claimJobs) is marked
 * started just before its engine call, so that from then on a lost worker's
 * job counts as a failed attempt (reclaimStale), and before it, not. Each row
 * counts only while still 'processing' under this worker and claim; a job no
 * longer ours (cancelled, or reclaimed while this worker's heartbeat was late)
 * is in neither set: the worker drops it unstarted.
 */
export async function markStarted(db: Queryable, workerId: string, jobs: StartMark[]): Promise<Marked> {
  if (jobs.length === 0) return { started: new Set(), busy: new Set() };
  const ids = jobs.map((j) => j.requestId);
  const attempts = jobs.map((j) => j.attempt);
  const r = await db.query<{ request_id: string }>({
    name: 'steadytext_mark_started',
    text: `WITH mine AS (
             SELECT q.request_id FROM unnest($2::uuid[], $3::int[]) AS i(request_id, attempt)
             JOIN steadytext_queue q ON q.request_id = i.request_id
             WHERE ${heldByClaim()}
             FOR UPDATE OF q SKIP LOCKED
           )
           UPDATE steadytext_queue q SET started_at = now()
           FROM mine WHERE q.request_id = mine.request_id
           RETURNING q.request_id`,
    values: [workerId, ids, attempts],
  });
  const started = new Set(r.rows.map((row) => row.request_id));
  const busy =
    started.size < jobs.length ? await stillClaimed(db, workerId, jobs.filter((j) => !started.has(j.requestId))) : new Set<string>();
  return { started, busy };
}
