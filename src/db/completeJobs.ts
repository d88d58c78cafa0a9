import type { Queryable } from './queryable.ts';

export interface Completion {
  requestId: string;
  /** The claim (`attempt`) this result ends. */
  attempt: number;
  result: string;
  /** Model that produced the result (the cache check, as in completeJob). */
  modelId: string | null;
}

/** Completions as the parallel arrays ($2..$5) both grouped statements unnest. */
export function completionColumns(completions: Completion[]): [string[], number[], string[], (string | null)[]] {
  return [
    completions.map((c) => c.requestId),
    completions.map((c) => c.attempt),
    completions.map((c) => c.result),
    completions.map((c) => c.modelId),
  ];
}

/**
 * The CTE both grouped completions end with: results of jobs that asked for
 * the cache (use_cache) go into steadytext_cache under the key computed at
 * enqueue, but only when this worker's model is the one the key names.
 * Reads a `done` CTE (request_id, function_name, parameters, cache_key,
 * model_id, producer, result). Nothing in it can fail on a row's content
 * (use_cache is compared as jsonb, never cast), so one odd row cannot fail
 * the statement for the others.
 */
export const FILL_CACHE_FROM_DONE = `cached AS (
             INSERT INTO steadytext_cache (cache_key, function_name, model_id, parameters, result)
             SELECT DISTINCT ON (cache_key) cache_key, function_name, model_id, parameters, result FROM done
             WHERE cache_key IS NOT NULL AND model_id = producer
               AND parameters->'use_cache' = 'true'::jsonb
             ORDER BY cache_key
             ON CONFLICT (cache_key) DO NOTHING
           )`;

/**
 * completeJob for several jobs of one worker in one statement (one commit):
 * the worker stores the results of jobs that finished while its previous
 * completion was in flight together, so a busy worker pays about one commit
 * per group instead of one per job. Each row is guarded exactly as in
 * completeJob (still 'processing' under this worker and claim), each is cached
 * under the same rule, and the completion trigger still sends one
 * steadytext_completed NOTIFY per row. Returns the request ids that counted.
 */
export async function completeJobs(db: Queryable, workerId: string, completions: Completion[]): Promise<Set<string>> {
  if (completions.length === 0) return new Set();
  const r = await db.query<{ request_id: string }>({
    name: 'steadytext_complete_jobs',
    text: `WITH input AS (
             SELECT * FROM unnest($2::uuid[], $3::int[], $4::text[], $5::text[]) AS i(request_id, attempt, result, producer)
           ), done AS (
             UPDATE steadytext_queue q
             SET status = 'completed', result = i.result, error = NULL, completed_at = now()
             FROM input i
             WHERE q.request_id = i.request_id AND q.status = 'processing' AND q.worker_id = $1 AND q.attempt = i.attempt
             RETURNING q.request_id, q.function_name, q.parameters, q.cache_key, q.model_id, i.producer, i.result
           ), ${FILL_CACHE_FROM_DONE}
           SELECT request_id FROM done`,
    values: [workerId, ...completionColumns(completions)],
  });
  return new Set(r.rows.map((row) => row.request_id));
}
