/**
 * The give-up rule, the one home of "retry or fail": the SET list of an
 * UPDATE of steadytext_queue AS q that records one failed attempt (a job that
 * threw or timed out, failJob; a job whose worker was lost, reclaimStale).
 * While retries remain (retry_count < the row's max_retries, or the worker's
 * default where it is NULL) and the failure is retryable: back to 'pending'
 * with retry_count + 1, runnable at `retryAt`. Otherwise 'failed' with
 * failed_at and completed_at. Either way max_retries records the limit that
 * applied and `error` the reason. Arguments are SQL expressions (parameters
 * such as '$5'). SET expressions all see the row as it was before the UPDATE.
 */
export function failedAttemptSet(a: { defaultMaxRetries: string; retryable: string; retryAt: string; error: string }): string {
  const giveUp = `(NOT ${a.retryable}::boolean OR q.retry_count >= coalesce(q.max_retries, ${a.defaultMaxRetries}::int))`;
  return `status       = CASE WHEN ${giveUp} THEN 'failed' ELSE 'pending' END,
       retry_count  = CASE WHEN ${giveUp} THEN q.retry_count ELSE q.retry_count + 1 END,
       run_at       = CASE WHEN ${giveUp} THEN q.run_at ELSE ${a.retryAt} END,
       failed_at    = CASE WHEN ${giveUp} THEN now() END,
       completed_at = CASE WHEN ${giveUp} THEN now() END,
       max_retries  = coalesce(q.max_retries, ${a.defaultMaxRetries}::int),
       error        = ${a.error}`;
}
