import type { Queryable } from '../queryable.ts';
import type { PipelineClaimRef } from './writePipelineBatch.ts';

/**
 * The pipeline refusal: the pipeline cannot run on this worker's model (its
 * vectors do not fit the destination). The rows go back to pending and the
 * pipeline is blocked with `error` as its last_error until it is altered or
 * resumed.
 */
export async function refusePipelineRows(
  db: Queryable,
  pipelineId: number,
  workerId: string,
  rows: readonly PipelineClaimRef[],
  error: string,
): Promise<void> {
  await db.query({
    name: 'steadytext_pipeline_refuse',
    text: `SELECT _steadytext_pipeline_refuse($1::integer, $2::text, $3::jsonb[], $4::bigint[], $5::text)`,
    values: [pipelineId, workerId, rows.map((r) => JSON.stringify(r.row_key)), rows.map((r) => r.claim), error],
  });
}
