// A stand-in for the worker's pipeline side, for tests that need a pipeline's
// rows written where no worker process can run (a server of another version,
// a restored dump): the same calls a worker makes (docs/pipelines.md, "Worker
// surface"): claim a batch, compute each row's result, write the batch.
// Results come from simResult, a pure function of the input, so a test can
// recompute what every row must hold.
import type pg from 'pg';

/** The model ids the simulated worker publishes and claims with. */
export const SIM_MODELS = { generation: 'sim-generation', embedding: 'sim-embedding', reranking: 'sim-reranking' };

/**
 * The simulated engine's answer, as the worker writes it (steadytext_queue.result's
 * text): embed → a 3-vector `[length, char-code sum mod 997, 1]` (integers, so
 * real[] and vector(3) hold it exactly); generate → `echo:<input>`.
 */
export function simResult(functionName: string, input: string): string {
  if (functionName === 'embed') {
    let sum = 0;
    for (const ch of input) sum += ch.codePointAt(0)!;
    return `[${input.length},${sum % 997},1]`;
  }
  if (functionName === 'generate') return `echo:${input}`;
  throw new Error(`simResult: no simulated answer for ${functionName}`);
}

/** simResult('embed', ...) as real[] reads back. */
export const simVector = (input: string): number[] => JSON.parse(simResult('embed', input)) as number[];

export interface ClaimedRow {
  row_key: unknown[];
  claim: string;
  input: string | null;
  input_hash: string | null;
}

export interface ClaimedBatch {
  pipelineId: number;
  name: string;
  functionName: string;
  modelId: string;
  rows: ClaimedRow[];
}

/** Publishes SIM_MODELS as the worker does at start (the pipelines' model ids come from here). */
export async function publishModels(db: pg.ClientBase | pg.Pool): Promise<void> {
  await db.query(`SELECT _steadytext_publish_model_ids($1::jsonb)`, [JSON.stringify(SIM_MODELS)]);
}

/** One _steadytext_pipeline_claim; undefined when it gives no rows. */
export async function claimBatch(
  db: pg.ClientBase | pg.Pool,
  workerId: string,
  maxRows: number,
  served: string[] | null = null,
): Promise<ClaimedBatch | undefined> {
  const r = await db.query(
    `SELECT pipeline_id, name, function_name, model_id, row_key, claim::text AS claim, input, input_hash
     FROM _steadytext_pipeline_claim($1, $2, $3::jsonb, $4::text[])`,
    [workerId, maxRows, JSON.stringify(SIM_MODELS), served],
  );
  if (r.rows.length === 0) return undefined;
  const first = r.rows[0];
  return {
    pipelineId: first.pipeline_id,
    name: first.name,
    functionName: first.function_name,
    modelId: first.model_id,
    rows: r.rows.map((x) => ({ row_key: x.row_key, claim: x.claim, input: x.input, input_hash: x.input_hash })),
  };
}

export type Outcomes = Record<'written' | 'stale' | 'busy' | 'failed' | 'lost', number>;

/**
 * _steadytext_pipeline_write for a claimed batch: simResult for each row
 * (NULL for a NULL input), or the error `refuse(row)` gives for it.
 */
export async function writeBatch(
  db: pg.ClientBase | pg.Pool,
  workerId: string,
  batch: ClaimedBatch,
  refuse: (row: ClaimedRow) => string | undefined = () => undefined,
): Promise<Outcomes> {
  const errors = batch.rows.map((row) => refuse(row) ?? null);
  const results = batch.rows.map((row, i) => (errors[i] !== null || row.input === null ? null : simResult(batch.functionName, row.input)));
  const r = await db.query<{ outcome: keyof Outcomes; rows: string }>(
    `SELECT outcome, "rows" FROM _steadytext_pipeline_write($1, $2, $3, $4::jsonb[], $5::bigint[], $6::text[], $7::text[], $8::text[])`,
    [
      batch.pipelineId,
      workerId,
      batch.modelId,
      batch.rows.map((row) => JSON.stringify(row.row_key)),
      batch.rows.map((row) => row.claim),
      batch.rows.map((row) => row.input_hash),
      results,
      errors,
    ],
  );
  const out: Outcomes = { written: 0, stale: 0, busy: 0, failed: 0, lost: 0 };
  for (const x of r.rows) out[x.outcome] = Number(x.rows);
  return out;
}

/**
 * Claims and writes batches until a claim gives nothing (every pipeline's
 * scan finished and no row is pending); returns what the writes reported.
 */
export async function runUntilIdle(db: pg.ClientBase | pg.Pool, workerId: string, maxRows = 64): Promise<Outcomes & { batches: number }> {
  const total = { written: 0, stale: 0, busy: 0, failed: 0, lost: 0, batches: 0 };
  for (;;) {
    const batch = await claimBatch(db, workerId, maxRows);
    if (!batch) return total;
    const out = await writeBatch(db, workerId, batch);
    for (const k of Object.keys(out) as (keyof Outcomes)[]) total[k] += out[k];
    total.batches++;
    if (total.batches > 10_000) throw new Error('runUntilIdle: still claiming after 10000 batches');
  }
}
