import { completeJobs } from './completeJobs.ts';
import type { Queryable } from './queryable.ts';

/**
 * Stores a result, in one statement: only if the row is still 'processing'
 * under this worker and claim (`attempt`), so the late result of a cancelled,
 * timed-out or reclaimed job is discarded. When the request asked for the
 * cache (parameters.use_cache) and carries the cache_key computed at enqueue
 * (steadytext_cache_key(function_name, model_id, parameters)), the result is
 * also written to steadytext_cache, provided the key was computed for the
 * model that produced the result (`modelId`; a request enqueued before a
 * model change is answered but not cached under the old model's key).
 * Returns whether the completion counted.
 */
export async function completeJob(
  db: Queryable,
  requestId: string,
  workerId: string,
  attempt: number,
  result: string,
  modelId: string | null,
): Promise<boolean> {
  // One statement for one job or many: the grouped completion is the worker's own.
  const counted = await completeJobs(db, workerId, [{ requestId, attempt, result, modelId }]);
  return counted.has(requestId);
}
