// The synchronous counterparts (steadytext_generate, _generate_json,
// _generate_regex, _generate_choice, _embed, _rerank): the async twin's
// arguments minus priority, answered through the request-response hand-off by
// a real worker process (scripted engine; one test on the tiny real models),
// cache hits without a worker, and a clear 55000 when no worker runs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { spawnWorker, waitFor, type WorkerProcess } from '../worker/fixtures/queue.ts';
import { TINY_DIR } from '../engine/tinyEngine.ts';
import { assertSqlError, enableHandoff, queueCount } from './helpers.ts';

let db: TestDatabase;
let worker: WorkerProcess | undefined;

async function startWorker(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<WorkerProcess> {
  const w = spawnWorker(db.url, ['--poll-interval', '0.5', '--heartbeat-interval', '0.5', '--max-retries', '0', ...args], env);
  await w.started;
  return w;
}

async function stopWorker(w: WorkerProcess | undefined): Promise<void> {
  if (!w) return;
  w.kill('SIGTERM');
  await w.exited;
}

before(async () => {
  db = await createTestDatabase();
  await enableHandoff(db.pool, db.url);
  worker = await startWorker();
});
after(async () => {
  await stopWorker(worker);
  await db.drop();
});

test('each sync function takes its async twin\'s arguments minus priority, with the same defaults', async () => {
  const r = await db.pool.query(
    `SELECT p.proname, pg_get_function_arguments(p.oid) AS args, pg_get_function_result(p.oid) AS result
     FROM pg_proc p WHERE p.proname IN ('steadytext_generate', 'steadytext_generate_json', 'steadytext_generate_regex',
       'steadytext_generate_choice', 'steadytext_embed', 'steadytext_rerank',
       'steadytext_generate_async', 'steadytext_generate_json_async', 'steadytext_generate_regex_async',
       'steadytext_generate_choice_async', 'steadytext_embed_async', 'steadytext_rerank_async')`,
  );
  const by = Object.fromEntries(r.rows.map((x) => [x.proname, x]));
  for (const f of ['generate', 'generate_json', 'generate_regex', 'generate_choice', 'embed', 'rerank']) {
    const twin = by[`steadytext_${f}_async`].args.replace(/, priority integer DEFAULT 0$/, '');
    assert.equal(by[`steadytext_${f}`].args, twin, f);
  }
  assert.equal(by.steadytext_embed.result, 'real[]');
  assert.equal(by.steadytext_rerank.result, 'TABLE(document text, score double precision)');
  assert.equal(by.steadytext_generate.result, 'text');
});

test('the worker answers each sync function within one statement', async () => {
  const q = async (sql: string, params: unknown[] = []) => (await db.pool.query(sql, params)).rows;
  assert.equal((await q(`SELECT steadytext_generate('hello sync', use_cache := false) AS r`))[0].r, 'echo:hello sync');
  assert.deepEqual(JSON.parse((await q(`SELECT steadytext_generate_json('j', '{"type":"object"}') AS r`))[0].r), { echo: 'j' });
  assert.equal((await q(`SELECT steadytext_generate_regex('p', '[a-z]+') AS r`))[0].r, 'regex:[a-z]+:p');
  assert.equal((await q(`SELECT steadytext_generate_choice('abc', ARRAY['x', 'y']) AS r`))[0].r, 'y'); // length 3 mod 2
  const e = (await q(`SELECT steadytext_embed('embed me') AS e`))[0].e as number[];
  assert.equal(e.length, 4);
  assert.ok(Math.abs(Math.hypot(...e) - 1) < 1e-5);
  const ranked = await q(`SELECT * FROM steadytext_rerank('red apple', ARRAY['blue sky', 'red apple pie', 'an apple'])`);
  assert.deepEqual(ranked, [
    { document: 'red apple pie', score: 2 },
    { document: 'an apple', score: 1 },
    { document: 'blue sky', score: 0 },
  ]);
  // several calls in one statement run one after another
  const many = await q(`SELECT steadytext_generate('row ' || g, use_cache := false) AS r FROM generate_series(1, 3) g ORDER BY g`);
  assert.deepEqual(many.map((x) => x.r), ['echo:row 1', 'echo:row 2', 'echo:row 3']);
  // inside an explicit transaction too; the caller's row commits with it
  const c = await db.connect();
  await c.query('BEGIN');
  assert.equal((await c.query(`SELECT steadytext_generate('in a transaction', use_cache := false) AS r`)).rows[0].r, 'echo:in a transaction');
  await c.query('COMMIT');
  const rows = await q(`SELECT status, handoff_of IS NOT NULL AS copy FROM steadytext_queue WHERE parameters->>'prompt' = 'in a transaction' ORDER BY 2`);
  assert.deepEqual(rows, [{ status: 'completed', copy: false }, { status: 'completed', copy: true }]);
});

test('a cache hit is answered without a worker and writes no queue row', async () => {
  assert.equal((await db.pool.query(`SELECT steadytext_generate('cache me') AS r`)).rows[0].r, 'echo:cache me');
  await waitFor('cache entry', async () =>
    (await db.pool.query(`SELECT 1 FROM steadytext_cache WHERE parameters->>'prompt' = 'cache me'`)).rows.length > 0);
  await stopWorker(worker);
  worker = undefined;
  const n = await queueCount(db.pool);
  assert.equal((await db.pool.query(`SELECT steadytext_generate('cache me') AS r`)).rows[0].r, 'echo:cache me');
  assert.equal(await queueCount(db.pool), n);
  await db.pool.query(`SELECT _steadytext_cache_fold()`);
  const hits = await db.pool.query(`SELECT access_count::int AS n FROM steadytext_cache WHERE parameters->>'prompt' = 'cache me'`);
  assert.equal(hits.rows[0].n, 2);
});

test('with no worker running: 55000 naming the worker, raised before anything is written', async () => {
  assert.equal(worker, undefined);
  const n = await queueCount(db.pool);
  for (const sql of [
    `SELECT steadytext_generate('nobody home', use_cache := false)`,
    `SELECT steadytext_embed('nobody home')`,
    `SELECT * FROM steadytext_rerank('q', ARRAY['d'])`,
  ]) {
    const err = await assertSqlError(db.pool, sql, [], '55000', 'no steadytext worker is running', '`steadytext worker`', '`steadytext up`');
    assert.match(err.message, /^steadytext_(generate|embed|rerank): /);
  }
  assert.equal(await queueCount(db.pool), n);
  // a worker that stopped heartbeating counts as gone
  await db.pool.query(`INSERT INTO steadytext_workers (worker_id, host, pid, last_heartbeat) VALUES ('stale', 'h', 1, now() - interval '1 minute')`);
  await assertSqlError(db.pool, `SELECT steadytext_generate('stale worker', use_cache := false)`, [], '55000', 'no steadytext worker');
  assert.equal(await queueCount(db.pool), n);
});

test('bad arguments name the sync function and the argument', async () => {
  const n = await queueCount(db.pool);
  await assertSqlError(db.pool, `SELECT steadytext_generate(NULL)`, [], '22004', 'steadytext_generate: prompt');
  await assertSqlError(db.pool, `SELECT steadytext_generate('p', max_tokens := 0)`, [], '22023', 'steadytext_generate: max_tokens');
  await assertSqlError(db.pool, `SELECT steadytext_generate_json('p', '{"$ref":"#"}')`, [], '0A000', 'steadytext_generate_json: schema');
  await assertSqlError(db.pool, `SELECT steadytext_generate_regex('p', 'a(?=b)')`, [], '0A000', 'steadytext_generate_regex: pattern');
  await assertSqlError(db.pool, `SELECT steadytext_generate_choice('p', '{}')`, [], '22023', 'steadytext_generate_choice: choices');
  await assertSqlError(db.pool, `SELECT steadytext_embed('')`, [], '22023', 'steadytext_embed: text_input');
  await assertSqlError(db.pool, `SELECT * FROM steadytext_rerank('q', NULL)`, [], '22004', 'steadytext_rerank: documents');
  await assertSqlError(db.pool, `SELECT steadytext_generate('p', seed := -1)`, [], '22023', 'steadytext_generate: seed');
  const c = await db.connect();
  await c.query(`SET steadytext.sync_timeout_seconds = 'soon'`);
  await assertSqlError(c, `SELECT steadytext_generate('p')`, [], '22023', 'steadytext.sync_timeout_seconds');
  await c.query(`SET steadytext.sync_timeout_seconds = -1`);
  await assertSqlError(c, `SELECT steadytext_generate('p')`, [], '22023', 'steadytext.sync_timeout_seconds');
  assert.equal(await queueCount(db.pool), n);
});

test('failures, cancels and steadytext.sync_timeout_seconds surface as steadytext_get_async_result raises them', async () => {
  worker = await startWorker();
  await assertSqlError(db.pool, `SELECT steadytext_generate('bad-input:no good', use_cache := false)`, [], 'STX01', 'no good');
  const c = await db.connect();
  await c.query(`SET steadytext.sync_timeout_seconds = 1`);
  const t0 = Date.now();
  await assertSqlError(c, `SELECT steadytext_generate('sleep:5000', use_cache := false)`, [], 'STX03', 'did not finish within 1 seconds');
  assert.ok(Date.now() - t0 < 4000);
  // the timed-out copy was cancelled (the worker aborts it)
  const copy = await db.pool.query(`SELECT status FROM steadytext_queue WHERE parameters->>'prompt' = 'sleep:5000' AND handoff_of IS NOT NULL`);
  assert.deepEqual(copy.rows, [{ status: 'cancelled' }]);
});

test('without dblink: 55000 saying so, nothing written', async () => {
  const other = await createTestDatabase();
  const w = spawnWorker(other.url, ['--poll-interval', '0.5']);
  try {
    await w.started;
    await assertSqlError(other.pool, `SELECT steadytext_generate('no dblink', use_cache := false)`, [], '55000', 'steadytext_generate', 'dblink');
    assert.equal(await queueCount(other.pool), 0);
  } finally {
    w.kill('SIGTERM');
    await w.exited;
    await other.drop();
  }
});

test('real engine (tiny models): steadytext_embed is unit-norm real[], steadytext_generate is deterministic', async () => {
  await stopWorker(worker);
  worker = await startWorker(['--models', 'tiny'], { STEADYTEXT_ENGINE_MODULE: '', STEADYTEXT_MODEL_DIR: TINY_DIR });
  const e = (await db.pool.query(`SELECT steadytext_embed('PostgreSQL is amazing', use_cache := false) AS e`)).rows[0].e as number[];
  assert.ok(e.length > 1);
  assert.ok(Math.abs(Math.hypot(...e) - 1) < 1e-3, `norm ${Math.hypot(...e)}`);
  const gen = `SELECT steadytext_generate('Write a poem about databases', max_tokens := 16, use_cache := false) AS r`;
  const a = (await db.pool.query(gen)).rows[0].r as string;
  const b = (await db.pool.query(gen)).rows[0].r as string;
  assert.equal(typeof a, 'string');
  assert.equal(a, b);
  const seeded = (await db.pool.query(`SELECT steadytext_generate('Write a poem about databases', max_tokens := 16, use_cache := false, seed := 7) AS r`)).rows[0].r;
  assert.equal(typeof seeded, 'string');
});
