// A pipeline batch as the worker holds it: the rows one claim of
// _steadytext_pipeline_claim brought (one pipeline's), from the claim until
// every row's outcome is recorded, and the job each row stands for.
import type { Job } from '../../interfaces.ts';
import type { PipelineRow } from '../../db/pipelines/claimPipelineBatch.ts';

export interface PipelineBatch {
  pipelineId: number;
  /** The pipeline's name (logs, the metrics' `pipeline` label). */
  name: string;
  functionName: PipelineRow['function_name'];
  /** The function's arguments without the input. */
  parameters: Record<string, unknown>;
  modelId: string;
  /** The destination's vector size when known (embed), else null. */
  dimensions: number | null;
  /** Embeddings are written as numbers (binary), not as text. */
  vectors: boolean;
  rows: PipelineRow[];
  /** ready: claimed ahead, waiting for a slot; running: on the engine; recording: its outcome is being written. */
  state: 'ready' | 'running' | 'recording';
  /** Aborts its engine calls (worker stopping after the grace). */
  controller: AbortController;
}

/** The rows of one claim as a batch; undefined when the claim brought none. */
export function toBatch(rows: PipelineRow[]): PipelineBatch | undefined {
  const [first] = rows;
  if (!first) return undefined;
  if (rows.some((r) => r.pipeline_id !== first.pipeline_id)) {
    throw new Error(`a pipeline claim returned rows of several pipelines (${[...new Set(rows.map((r) => r.name))].join(', ')})`);
  }
  return {
    pipelineId: first.pipeline_id,
    name: first.name,
    functionName: first.function_name,
    parameters: first.parameters ?? {},
    modelId: first.model_id,
    dimensions: first.dimensions,
    vectors: first.vectors === true,
    rows,
    state: 'ready',
    controller: new AbortController(),
  };
}

/**
 * The job a row stands for, as the queue would hold it: the pipeline's
 * parameters with the row's input added as `text_input` (embed) or `prompt`
 * (the generate types).
 */
export function rowJob(batch: PipelineBatch, row: PipelineRow): Job {
  const inputName = batch.functionName === 'embed' ? 'text_input' : 'prompt';
  return {
    request_id: `pipeline ${batch.name} row ${JSON.stringify(row.row_key)}`,
    function_name: batch.functionName,
    parameters: { ...batch.parameters, [inputName]: row.input } as Job['parameters'],
    priority: 0,
    retry_count: 0,
    max_retries: 0,
    attempt: 0,
    batch_id: null,
    cache_key: null,
    timeout_seconds: null,
  };
}
