import { completeJobs } from './completeJobs.ts';
import type { Queryable } from './queryable.ts';

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
