import { binaryRealArray } from '../../postgres/binaryRealArray.ts';
import type { Queryable } from '../queryable.ts';

/** How each row of a write ended (docs/pipelines.md): counts by outcome. */
export type PipelineWriteOutcome = 'written' | 'stale' | 'busy' | 'failed' | 'lost';

/** A claimed row, named as every pipeline call after the claim names it. */
export interface PipelineClaimRef {
  row_key: unknown[];
  claim: string;
}

/**
 * What the worker computed for one row: its result text (null writes NULL),
 * its embedding as numbers (a pipeline whose claim said `vectors`), or why
 * the engine refused its input.
 */
export type PipelineRowResult = PipelineClaimRef & { input_hash: string | null } & (
    | { result: string | null; vector?: undefined; error?: undefined }
    | { result?: undefined; vector: readonly number[]; error?: undefined }
    | { result?: undefined; vector?: undefined; error: string }
  );

/**
 * The pipeline write: every computed row of one batch in one statement. Each
 * row is written only while it is still this claim's and its input unchanged
 * (input_hash): else `stale` or `lost`; a row another session holds locked
 * is `busy` (pending again, retried later); a constraint or trigger error on
 * one row, or an `error` given here, fails that row alone (`failed`).
 * Embeddings given as `vector` travel as one binary real[] (binaryRealArray),
 * every one of them of one size (runBatch sends text otherwise; the SQL
 * refuses vectors of mixed sizes with 22023).
 */
export async function writePipelineBatch(
  db: Queryable,
  pipelineId: number,
  workerId: string,
  modelId: string,
  rows: readonly PipelineRowResult[],
): Promise<Partial<Record<PipelineWriteOutcome, number>>> {
  const vectors: (readonly number[])[] = [];
  const starts = rows.map((row) => {
    if (row.vector === undefined) return null;
    vectors.push(row.vector);
    return (vectors.length - 1) * row.vector.length + 1;
  });
  const r = await db.query<{ outcome: PipelineWriteOutcome; rows: string }>({
    name: 'steadytext_pipeline_write',
    text: `SELECT outcome, rows::text AS rows
           FROM _steadytext_pipeline_write($1::integer, $2::text, $3::text, $4::jsonb[], $5::bigint[], $6::text[], $7::text[], $8::text[],
                                           $9::real[], $10::integer[])`,
    values: [
      pipelineId,
      workerId,
      modelId,
      rows.map((row) => JSON.stringify(row.row_key)),
      rows.map((row) => row.claim),
      rows.map((row) => row.input_hash),
      rows.map((row) => row.result ?? null),
      rows.map((row) => row.error ?? null),
      vectors.length > 0 ? binaryRealArray(vectors) : null,
      vectors.length > 0 ? starts : null,
    ],
  });
  const counts: Partial<Record<PipelineWriteOutcome, number>> = {};
  for (const { outcome, rows: n } of r.rows) counts[outcome] = (counts[outcome] ?? 0) + Number(n);
  return counts;
}
