// Docs that show output show what the command prints: every block tagged
// `<!-- output: <scenario> -->` in README.md and docs/*.md (outputSamples.ts)
// is compared, by shape, with what the scenario's command prints when run
// here against a live database. A fenced block with no language must carry
// such a tag or `<!-- illustrative -->`, so no new sample escapes this test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MODEL_ROLES } from '../../src/engine/modelSources.ts';
import { ensureTinyModel } from '../../src/engine/tinyModels.ts';
import { startCli, runCli } from '../cli/fixtures/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createDocumentsPipeline, pipelineWhen, settleRows } from '../helpers/pipelines.ts';
import { claim, complete } from '../sql/helpers.ts';
import { ROOT, SCRIPTED_ENGINE, waitFor } from '../worker/fixtures/queue.ts';
import { compareShape, outputSamples, type OutputSample } from './outputSamples.ts';

const VERSION: string = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
const DOCS = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join('docs', f))];

/** A live worker row as the docs' samples show it (host `vm`), without a worker process. */
async function liveWorkerRow(db: TestDatabase, o: { id: string; pid: number; running?: number; completed?: number; served?: string[]; models?: Record<string, string> }) {
  await db.pool.query(
    `INSERT INTO steadytext_workers
       (worker_id, host, pid, started_at, last_heartbeat, status, heartbeat_timeout_seconds,
        jobs_completed, jobs_failed, current_jobs, served_functions, models)
     VALUES ($1, 'vm', $2, now(), now(), 'running', 3600, $3, 0, $4, $5, $6)`,
    [o.id, o.pid, o.completed ?? 0, o.running ?? 0, o.served ?? null, o.models ? JSON.stringify(o.models) : null],
  );
}

/** Runs a command to its end (exit 0 expected) and gives its stdout. */
async function output(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const r = await runCli(args, env, 60_000);
  assert.equal(r.code, 0, `steadytext ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}

/** `steadytext worker` until SIGTERM, and its /health answer while it ran. */
let workerRun: Promise<{ stdout: string; health: string }> | undefined;
function runWorker(): Promise<{ stdout: string; health: string }> {
  return (workerRun ??= (async () => {
    const db = await createTestDatabase();
    try {
      const cli = startCli(['worker', '--worker-id', 'w1', '--metrics-port', '0', '--engine-module', SCRIPTED_ENGINE], { DATABASE_URL: db.url }, 60_000);
      const base = await waitFor('the worker to start', async () =>
        / started \(/.test(cli.stdout()) && /metrics: (http:\/\/\S+)\/metrics/.exec(cli.stdout())?.[1], 30_000);
      const health = await (await fetch(`${base}/health`)).text();
      cli.kill('SIGTERM');
      const r = await cli.result;
      assert.equal(r.code, 0, r.stderr);
      return { stdout: r.stdout, health };
    } finally {
      await db.drop();
    }
  })());
}

/**
 * `command` run against a database holding the docs' pipeline: doc_embeddings
 * over 4 documents, 2 done, 1 refused by the engine, 1 pending (no worker).
 */
async function withDocsPipeline(command: string[]): Promise<string> {
  const db = await createTestDatabase();
  try {
    const name = await createDocumentsPipeline(db.pool, { name: 'doc_embeddings', rows: 4 });
    await pipelineWhen(db.pool, name, 'backfilled', (p) => p.rows === 4 && p.pending === 4);
    await settleRows(db.pool, name, { done: 2, failed: 1, error: 'engine refused the input: text too long' });
    await pipelineWhen(db.pool, name, '2 done, 1 failed', (p) => p.done === 2 && p.failed === 1);
    return await output(command, { DATABASE_URL: db.url });
  } finally {
    await db.drop();
  }
}

/** What each scenario a doc names prints, run here. */
const SCENARIOS: Record<string, () => Promise<string>> = {
  // 3 requests: 2 generate completed, 1 processing on the one live worker.
  'steadytext status': async () => {
    const db = await createTestDatabase();
    try {
      await liveWorkerRow(db, { id: 'vm-21908-da4984', pid: 21908, running: 1, completed: 2 });
      const ids = (await db.pool.query(
        `SELECT steadytext_generate_async('prompt ' || i, use_cache := false) AS id FROM generate_series(1, 3) AS i`)).rows.map((r) => r.id);
      for (const id of ids) await claim(db.pool, id, 'vm-21908-da4984');
      for (const id of ids.slice(0, 2)) await complete(db.pool, id, 'done');
      return await output(['status'], { DATABASE_URL: db.url });
    } finally {
      await db.drop();
    }
  },
  // Pending generate_regex requests, and the one live worker refuses generate_regex.
  'steadytext status, a type no live worker takes': async () => {
    const db = await createTestDatabase();
    try {
      await liveWorkerRow(db, { id: 'vm-21908-da4984', pid: 21908, served: ['generate', 'generate_json', 'generate_choice', 'embed', 'rerank'] });
      await db.pool.query(`SELECT steadytext_generate_regex_async('Call me at ' || i, '\\d{3}-\\d{4}') FROM generate_series(1, 3) AS i`);
      return await output(['status'], { DATABASE_URL: db.url });
    } finally {
      await db.drop();
    }
  },
  'steadytext status, with a pipeline': () => withDocsPipeline(['status']),
  'steadytext pipelines': () => withDocsPipeline(['pipelines']),
  'steadytext pipelines doc_embeddings': () => withDocsPipeline(['pipelines', 'doc_embeddings']),
  // The tiny models present, no dblink, one live worker, an empty queue.
  'steadytext doctor': async () => {
    const db = await createTestDatabase();
    const models = mkdtempSync(path.join(tmpdir(), 'st-doc-models-'));
    try {
      for (const role of MODEL_ROLES) ensureTinyModel(role, models);
      // a worker on the tiny set records its model ids, as a real one does at start
      await liveWorkerRow(db, {
        id: 'vm-21908-da4984', pid: 21908,
        models: { generation: 'tiny-generation-v1-seed1', embedding: 'tiny-embedding-v1-seed2', reranking: 'tiny-reranking-v1-seed3' },
      });
      return await output(['doctor', '--models', 'tiny'], { DATABASE_URL: db.url, STEADYTEXT_MODEL_DIR: models });
    } finally {
      rmSync(models, { recursive: true, force: true });
      await db.drop();
    }
  },
  'steadytext worker --metrics-port 9464, then SIGTERM': async () => (await runWorker()).stdout,
  'GET /health': async () => (await runWorker()).health,
  'steadytext dashboard': async () => {
    const db = await createTestDatabase();
    try {
      const cli = startCli(['dashboard', '--port', '0'], { DATABASE_URL: db.url }, 60_000);
      await waitFor('the dashboard to listen', async () => /^dashboard: /m.test(cli.stdout()), 30_000);
      cli.kill('SIGTERM');
      await cli.result;
      return cli.stdout();
    } finally {
      await db.drop();
    }
  },
};

const all: OutputSample[] = [];
const untagged: string[] = [];
for (const file of DOCS) {
  const found = outputSamples(file, readFileSync(path.join(ROOT, file), 'utf8'));
  all.push(...found.samples);
  untagged.push(...found.untagged.map((b) => `${b.file}:${b.line}`));
}

test('the shape comparison: values may differ, words, lines and stale versions may not', () => {
  const out = 'queue: 12 requests\n│ generate │ completed │    11 │\nat http://127.0.0.1:4242/metrics';
  assert.equal(compareShape('$ steadytext status\nqueue: 3 requests\n│ generate │ completed │ 2 │\nat http://localhost:9464/metrics', out, VERSION), null);
  assert.equal(compareShape('queue: 3 requests\n│ generate │ ... │', out, VERSION, true), null, '... and excerpts');
  assert.notEqual(compareShape('queue: 3 requests', out, VERSION), null, 'missing lines');
  assert.notEqual(compareShape('queue: 3 request', 'queue: 3 requests', VERSION), null);
  assert.notEqual(compareShape('pg_steadytext  1.0.0 installed', `pg_steadytext  ${VERSION} installed`, VERSION), null, 'another version');
  assert.equal(compareShape(`pg_steadytext  ${VERSION} installed`, `pg_steadytext  ${VERSION} installed`, VERSION), null);
});

test('every fenced block with no language is a tagged output sample or marked illustrative', () => {
  assert.deepEqual(untagged, [], 'tag each with <!-- output: <scenario> --> (and add the scenario here) or <!-- illustrative -->');
});

test('every scenario a doc names exists, and every scenario is shown somewhere', () => {
  assert.deepEqual(all.map((s) => s.scenario).filter((s) => !(s in SCENARIOS)), []);
  assert.deepEqual(Object.keys(SCENARIOS).filter((s) => !all.some((x) => x.scenario === s)), []);
});

for (const sample of all) {
  test(`${sample.file}:${sample.line}: the sample has the shape of what \`${sample.scenario}\` prints`, { timeout: 120_000 }, async () => {
    const run = SCENARIOS[sample.scenario];
    if (!run) return; // reported by the test above
    const diff = compareShape(sample.text, await run(), VERSION, sample.excerpt);
    if (diff !== null) assert.fail(`${sample.file}:${sample.line} (${sample.scenario}): ${diff}`);
  });
}
