import type { Queryable } from '../queryable.ts';
import { heldByClaim, stillClaimed } from './stillClaimed.ts';

export interface Completion {
  requestId: string;
  /** The claim (`attempt`) this result ends. */
  attempt: number;
  result: string;
  /** Model that produced the result (the cache check below). */
  modelId: string | null;
  /**
   * How long the job waited between the statement that stamped its
   * started_at (its claim or markStarted) and the start of its engine call,
   * ms (default 0): started_at moves forward by it, so it says when the job
   * really started running.
   */
  waitedMs?: number;
}

export interface Stored {
  /** Request ids whose completion counted. */
  counted: Set<string>;
  /**
   * Request ids whose row another session holds locked (a client idle in
   * transaction after SELECT ... FOR UPDATE): not stored yet, to be sent
   * again. Skipping them keeps one locked row from stalling the whole group.
   */
  busy: Set<string>;
}

/**
 * The completion: processing → completed, for one job or a group of one
 * worker's jobs in one statement (one commit). Each row is guarded on its
 * own: it counts only while still 'processing' under this worker and claim
 * (`attempt`), so the late result of a cancelled, timed-out or reclaimed job
 * is discarded. Results of requests that asked for the cache (use_cache) and
 * carry the cache_key computed at enqueue also go into steadytext_cache,
 * provided the key was computed for the model that produced the result (a
 * request enqueued before a model change is answered but not cached under
 * the old model's key). Nothing in the statement depends on a row's content
 * in a way that can fail (use_cache is compared as jsonb, never cast), and
 * the completion trigger sends one steadytext_completed NOTIFY per row. The
 * same statement adds the completions it counted to the worker's
 * steadytext_workers.jobs_completed (one row update per group, not per job),
 * so steadytext_worker_status() agrees with the results the moment they are
 * visible, instead of a heartbeat later. A result the database still refuses
 * fails the whole statement: the worker then stores each result on its own
 * (Completer), so the refused row fails alone.
 */
export async function completeJobs(db: Queryable, workerId: string, completions: Completion[]): Promise<Stored> {
  if (completions.length === 0) return { counted: new Set(), busy: new Set() };
  const ids = completions.map((c) => c.requestId);
  const attempts = completions.map((c) => c.attempt);
  // Every join below is driven by request_id (the primary key), never by a
  // scan of the 'processing' rows: the cost stays linear in the group size
  // whatever the planner believes about the table.
  const r = await db.query<{ request_id: string }>({
    name: 'steadytext_complete_jobs',
    text: `WITH mine AS (
             SELECT q.request_id, i.result, i.producer, i.waited_ms
             FROM unnest($2::uuid[], $3::int[], $4::text[], $5::text[], $6::float8[])
                  AS i(request_id, attempt, result, producer, waited_ms)
             JOIN steadytext_queue q ON q.request_id = i.request_id
             WHERE ${heldByClaim()}
             FOR UPDATE OF q SKIP LOCKED
           ), done AS (
             UPDATE steadytext_queue q
             SET status = 'completed', result = m.result, error = NULL, completed_at = now(),
                 started_at = coalesce(q.started_at + m.waited_ms * interval '1 millisecond', now())
             FROM mine m
             WHERE q.request_id = m.request_id
             RETURNING q.request_id, q.function_name, q.parameters, q.cache_key, q.model_id, m.producer, m.result
           ), cached AS (
             INSERT INTO steadytext_cache (cache_key, function_name, model_id, parameters, result)
             SELECT DISTINCT ON (cache_key) cache_key, function_name, model_id, parameters, result FROM done
             WHERE cache_key IS NOT NULL AND model_id = producer AND parameters->'use_cache' = 'true'::jsonb
             ORDER BY cache_key
             ON CONFLICT (cache_key) DO NOTHING
           ), tally AS (
             UPDATE steadytext_workers w SET jobs_completed = w.jobs_completed + n.n
             FROM (SELECT count(*) AS n FROM done) n
             WHERE w.worker_id = $1 AND n.n > 0
           )
           SELECT request_id FROM done`,
    values: [
      workerId,
      ids,
      attempts,
      completions.map((c) => c.result),
      completions.map((c) => c.modelId),
      completions.map((c) => Math.max(0, c.waitedMs ?? 0)),
    ],
  });
  const counted = new Set(r.rows.map((row) => row.request_id));
  // Not stored: either no longer this claim's (discarded), or its row is
  // locked by another session (SKIP LOCKED passed it over): still ours, so
  // to be sent again. A row unlocked meanwhile is simply sent again too.
  const busy =
    counted.size < completions.length
      ? await stillClaimed(db, workerId, completions.filter((c) => !counted.has(c.requestId)))
      : new Set<string>();
  return { counted, busy };
}

/**
 * completeJobs for one result (same statement, same guard and cache rule).
 * Returns whether the completion counted (false also for a row another
 * session holds locked: nothing was stored).
 */
export async function completeJob(
  db: Queryable,
  requestId: string,
  workerId: string,
  attempt: number,
  result: string,
  modelId: string | null,
): Promise<boolean> {
  const { counted } = await completeJobs(db, workerId, [{ requestId, attempt, result, modelId }]);
  return counted.has(requestId);
}
