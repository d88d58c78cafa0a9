import type { Queryable } from '../queryable.ts';
import type { PipelineClaimRef } from './writePipelineBatch.ts';

/**
 * The pipeline release: claimed rows back to pending after `retryInSeconds`,
 * for a transient failure of their batch (an engine fault: `error` set, an
 * attempt counted) or because the worker lets them go (stopping, yielding its
 * slot: `error` null, no attempt counted).
 */
export async function releasePipelineRows(
  db: Queryable,
  pipelineId: number,
  workerId: string,
  rows: readonly PipelineClaimRef[],
  error: string | null,
  retryInSeconds: number,
): Promise<void> {
  if (rows.length === 0) return;
  await db.query({
    name: 'steadytext_pipeline_release',
    text: `SELECT _steadytext_pipeline_release($1::integer, $2::text, $3::jsonb[], $4::bigint[], $5::text, $6::double precision)`,
    values: [pipelineId, workerId, rows.map((r) => JSON.stringify(r.row_key)), rows.map((r) => r.claim), error, retryInSeconds],
  });
}
