// Shared by the pipeline tests (docs/pipelines.md): a source table, a
// pipeline over it, gates that hold the scripted engine until a test opens
// them, and waits on the database (never on the clock).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { pipelineStatus, type PipelineStatusRow } from '../../src/db/pipelines/pipelineStatus.ts';
import { createScriptedEngine } from '../helpers/scriptedEngine.ts';
import { waitFor as waitForOnce } from '../worker/fixtures/queue.ts';

export { startTestWorker, spawnWorker, enqueue, gen, row } from '../worker/fixtures/queue.ts';

/** Waits for a condition the database shows; a generous cap, for a loaded 2-core machine. */
export function waitFor<T>(what: string, check: () => Promise<T | undefined | null | false>, timeoutMs = 60_000): Promise<T> {
  return waitForOnce(what, check, timeoutMs, 25);
}

export interface PipelineOptions {
  name: string;
  source?: string;
  input?: string;
  destination?: string;
  functionName?: string;
  parameters?: Record<string, unknown>;
  priority?: number;
  useCache?: boolean;
  batchSize?: number | null;
}

/** steadytext_pipeline_create with the contract's named arguments. */
export async function createPipeline(db: pg.Pool | pg.Client, o: PipelineOptions): Promise<number> {
  const r = await db.query<{ id: number }>(
    `SELECT steadytext_pipeline_create($1, $2::regclass, $3, $4, function_name := $5, parameters := $6::jsonb,
              priority := $7, use_cache := $8, batch_size := $9) AS id`,
    [
      o.name,
      o.source ?? 'documents',
      o.input ?? 'content',
      o.destination ?? 'embedding',
      o.functionName ?? 'embed',
      JSON.stringify(o.parameters ?? {}),
      o.priority ?? 0,
      o.useCache ?? false,
      o.batchSize ?? null,
    ],
  );
  return r.rows[0].id;
}

/** documents(id, content, title, embedding double precision[], summary text) with `contents` as rows 1..n. */
export async function createDocuments(db: pg.Pool, contents: (string | null)[], extraDdl = ''): Promise<void> {
  await db.query(`CREATE TABLE documents (
    id integer PRIMARY KEY,
    content text,
    title text,
    embedding double precision[],
    summary text
    ${extraDdl}
  )`);
  await db.query(`INSERT INTO documents (id, content, title) SELECT i, c, 'title ' || i FROM unnest($1::text[]) WITH ORDINALITY AS t(c, i)`, [
    contents,
  ]);
}

/** The pipeline's row of steadytext_pipeline_status, as the CLI and the dashboard read it (pipelineStatus). */
export async function status(db: pg.Pool, name: string): Promise<PipelineStatusRow> {
  const [s] = await pipelineStatus(db, name);
  if (!s) throw new Error(`no status for pipeline ${name}`);
  return s;
}

export async function failures(db: pg.Pool, name: string): Promise<{ row_key: unknown; error: string; attempts: number }[]> {
  const r = await db.query(`SELECT row_key, error, attempts FROM steadytext_pipeline_failures($1) ORDER BY row_key::text`, [name]);
  return r.rows;
}

/** id → column value of documents. */
export async function column(db: pg.Pool, name: 'embedding' | 'summary'): Promise<Map<number, unknown>> {
  const r = await db.query(`SELECT id, ${name} AS v FROM documents ORDER BY id`);
  return new Map(r.rows.map((x) => [x.id as number, x.v]));
}

/** The vector the scripted engine gives a text (as a double precision[] reads back). */
export async function scriptedVector(text: string): Promise<number[]> {
  const [v] = await createScriptedEngine().embed([text]);
  return v;
}

/** A file the scripted engine waits for ('wait-for-file:<path>'): the test opens it when it has seen what it asserts. */
export interface Gate {
  path: string;
  /** The script that holds the engine until open(). */
  script: string;
  open(): void;
  dispose(): void;
}

export function gate(): Gate {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'st-pipeline-gate-'));
  const file = path.join(dir, 'open');
  return {
    path: file,
    script: `wait-for-file:${file}`,
    open: () => writeFileSync(file, ''),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
