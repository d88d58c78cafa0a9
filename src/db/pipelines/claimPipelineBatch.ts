import type { FunctionName, ModelRole } from '../../interfaces.ts';
import type { Queryable } from '../queryable.ts';

/** One row of a pipeline batch, as _steadytext_pipeline_claim returns it (docs/pipelines.md, "Worker surface"). */
export interface PipelineRow {
  pipeline_id: number;
  name: string;
  function_name: FunctionName;
  /** The function's arguments without the input (max_tokens, seed, schema, ...). */
  parameters: Record<string, unknown>;
  /** The model the pipeline's values come from now (this worker's model for its role). */
  model_id: string;
  /** The destination's vector size when known, else null. */
  dimensions: number | null;
  /** The source row's primary key as a JSON array, e.g. [42]. */
  row_key: unknown[];
  /** This claim of the row (bigint, kept as text): every later call names it. */
  claim: string;
  /** The row's input as text; null: the destination becomes NULL, no engine call. */
  input: string | null;
  input_hash: string | null;
  /** The cached result (use_cache and a cache hit): written as it is, no engine call. */
  cached: string | null;
  /** True: the write takes this pipeline's embeddings as numbers (writePipelineBatch's `vector`), not as text. */
  vectors: boolean;
}

/**
 * The pipeline claim: one pipeline's batch of at most `maxRows` rows (the
 * pipeline's batch_size caps it), highest priority first, or no rows. The SQL
 * passes a pipeline over while a claimable queue job of a served function has
 * a priority at least the pipeline's, and claims only pipelines whose model
 * is this worker's model for their role (`models`). `served`: the job types
 * this worker runs; null: every type.
 */
export async function claimPipelineBatch(
  db: Queryable,
  workerId: string,
  maxRows: number,
  models: Partial<Record<ModelRole, string>>,
  served: readonly FunctionName[] | null,
): Promise<PipelineRow[]> {
  const r = await db.query<PipelineRow>({
    name: 'steadytext_pipeline_claim',
    text: `SELECT pipeline_id, name, function_name, parameters, model_id, dimensions, row_key, claim::text AS claim,
                  input, input_hash, cached, vectors
           FROM _steadytext_pipeline_claim($1::text, $2::integer, $3::jsonb, $4::text[])`,
    values: [workerId, maxRows, JSON.stringify(models), served],
  });
  return r.rows;
}
