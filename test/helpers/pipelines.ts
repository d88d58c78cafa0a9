// Pipelines for the status and control tests (CLI, dashboard, /metrics, the
// docs' samples): a small table with a pipeline over it, created through
// steadytext_pipeline_create, and a stand-in worker that settles rows through
// the worker's SQL surface (_steadytext_pipeline_claim/_write, docs/pipelines.md),
// so a test has rows done and failed without an engine, and at once.
import assert from 'node:assert/strict';
import type { Queryable } from '../../src/db/queryable.ts';
import { pipelineStatus, type PipelineStatusRow } from '../../src/db/pipelines/pipelineStatus.ts';
import { waitFor } from '../worker/fixtures/queue.ts';

/** `documents(id, body, embedding real[])` with `rows` rows, and the pipeline `name` embedding body into embedding. */
export async function createDocumentsPipeline(db: Queryable, opts: { name?: string; rows?: number; table?: string } = {}): Promise<string> {
  const name = opts.name ?? 'doc_embeddings';
  const table = opts.table ?? 'documents';
  await db.query(`CREATE TABLE ${table} (id integer PRIMARY KEY, body text NOT NULL, embedding real[])`);
  await db.query(`INSERT INTO ${table} (id, body) SELECT i, 'document ' || i FROM generate_series(1, $1::int) AS i`, [opts.rows ?? 4]);
  await db.query(`SELECT steadytext_pipeline_create($1, $2::regclass, 'body', 'embedding')`, [name, table]);
  return name;
}

/** The pipeline's status row, once `check` holds for it (the backfill scan and the triggers run in the background). */
export async function pipelineWhen(
  db: Queryable,
  name: string,
  what: string,
  check: (p: PipelineStatusRow) => boolean,
  timeoutMs = 15_000,
): Promise<PipelineStatusRow> {
  let last: PipelineStatusRow | undefined;
  return waitFor(
    `${name}: ${what}`,
    async () => {
      [last] = await pipelineStatus(db, name);
      return last && check(last) ? last : undefined;
    },
    timeoutMs,
    50,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last status: ${JSON.stringify(last)}`);
  });
}

/** A worker row that claims may come from (live, heartbeating), as a started worker registers it. */
export async function registerStandInWorker(db: Queryable, workerId: string): Promise<void> {
  await db.query(
    `INSERT INTO steadytext_workers (worker_id, host, pid, started_at, last_heartbeat, status, heartbeat_timeout_seconds)
     VALUES ($1, 'test', 1, now(), now(), 'running', 3600)
     ON CONFLICT (worker_id) DO UPDATE SET last_heartbeat = now(), status = 'running'`,
    [workerId],
  );
}

interface ClaimedRow {
  pipeline_id: number;
  model_id: string;
  row_key: unknown[];
  claim: string;
  input: string | null;
  input_hash: string;
}

/**
 * Claims `done + failed` pending rows of the pipeline as a worker would (one
 * pipeline in the database: a claim takes the batch of whichever pipeline
 * comes first) and writes them: the first `done` get an embedding, the next
 * `failed` the error `error` (the engine refused that input). Returns the
 * write's outcomes that happened, e.g. {written: 2, failed: 1}.
 */
export async function settleRows(
  db: Queryable,
  name: string,
  opts: { done: number; failed?: number; error?: string; workerId?: string },
): Promise<Record<string, number>> {
  const workerId = opts.workerId ?? 'stand-in-worker';
  const want = opts.done + (opts.failed ?? 0);
  await registerStandInWorker(db, workerId);
  const [status] = await pipelineStatus(db, name);
  assert.ok(status, `pipeline ${name} exists`);
  const models = { embedding: status.model_id };
  const claimed: ClaimedRow[] = [];
  await waitFor(`${name}: ${want} rows claimed`, async () => {
    const r = await db.query<ClaimedRow>(
      `SELECT pipeline_id, model_id, row_key, claim::text AS claim, input, input_hash
       FROM _steadytext_pipeline_claim($1, $2, $3::jsonb)`,
      [workerId, want - claimed.length, JSON.stringify(models)],
    );
    claimed.push(...r.rows);
    return claimed.length >= want;
  });
  const errors = claimed.map((_, i) => (i < opts.done ? null : (opts.error ?? 'refused')));
  const results = claimed.map((c, i) => (i < opts.done ? `[${(c.input ?? '').length / 100},0.5,0.25]` : null));
  const r = await db.query<{ outcome: string; rows: string }>(
    `SELECT outcome, rows::text AS rows FROM _steadytext_pipeline_write($1, $2, $3, $4::jsonb[], $5::bigint[], $6::text[], $7::text[], $8::text[])`,
    [
      claimed[0].pipeline_id,
      workerId,
      claimed[0].model_id,
      claimed.map((c) => JSON.stringify(c.row_key)),
      claimed.map((c) => c.claim),
      claimed.map((c) => c.input_hash),
      results,
      errors,
    ],
  );
  return Object.fromEntries(r.rows.filter((o) => Number(o.rows) > 0).map((o) => [o.outcome, Number(o.rows)]));
}
