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
  const r = await db.query<{ n: number }>({
    name: 'steadytext_complete_job',
    text: `WITH done AS (
             UPDATE steadytext_queue
             SET status = 'completed', result = $4, error = NULL, completed_at = now()
             WHERE request_id = $1 AND status = 'processing' AND worker_id = $2 AND attempt = $3
             RETURNING function_name, parameters, cache_key, model_id
           ), cached AS (
             INSERT INTO steadytext_cache (cache_key, function_name, model_id, parameters, result)
             SELECT cache_key, function_name, model_id, parameters, $4 FROM done
             WHERE cache_key IS NOT NULL AND model_id = $5
               AND coalesce(parameters->>'use_cache', 'false')::boolean
             ON CONFLICT (cache_key) DO NOTHING
           )
           SELECT count(*)::int AS n FROM done`,
    values: [requestId, workerId, attempt, result, modelId],
  });
  return r.rows[0].n === 1;
}
