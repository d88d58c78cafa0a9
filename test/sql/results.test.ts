// check_async, check_async_batch, get_async_result, cancel_async, retry_failed,
// embedding, and the completion NOTIFY, with a stand-in worker.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { assertSqlError, claim, complete, fail, listen } from './helpers.ts';
import { waitFor } from '../worker/fixtures/queue.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db.drop();
});

const enqueue = async (prompt: string) =>
  (await db.pool.query(`SELECT steadytext_generate_async($1) AS id`, [prompt])).rows[0].id as string;
const MISSING = '550e8400-e29b-41d4-a716-446655440000';

test('check_async follows pending -> processing -> completed; unknown id is not_found', async () => {
  const id = await enqueue('status walk');
  const check = async () => (await db.pool.query(`SELECT * FROM steadytext_check_async($1)`, [id])).rows;
  let r = await check();
  assert.equal(r.length, 1);
  assert.deepEqual(Object.keys(r[0]), ['status', 'result', 'error', 'created_at', 'started_at', 'completed_at', 'priority']);
  assert.equal(r[0].status, 'pending');
  assert.equal(r[0].started_at, null);
  await claim(db.pool, id);
  r = await check();
  assert.equal(r[0].status, 'processing');
  assert.ok(r[0].started_at);
  await complete(db.pool, id, 'done!');
  r = await check();
  assert.equal(r[0].status, 'completed');
  assert.equal(r[0].result, 'done!');
  assert.ok(r[0].completed_at, 'completed_at is set on completion');
  const types = await db.pool.query(
    `SELECT pg_typeof(created_at)::text AS t FROM steadytext_check_async($1)`, [id]);
  assert.equal(types.rows[0].t, 'timestamp without time zone');
  const nf = await db.pool.query(`SELECT * FROM steadytext_check_async($1)`, [MISSING]);
  assert.deepEqual(nf.rows, [{ status: 'not_found', result: null, error: null, created_at: null, started_at: null, completed_at: null, priority: null }]);
});

test('check_async_batch returns one row per id in the given order, not_found for unknown', async () => {
  const a = await enqueue('batch a');
  const b = await enqueue('batch b');
  await fail(db.pool, b, 'model exploded');
  const r = await db.pool.query(`SELECT * FROM steadytext_check_async_batch($1::uuid[])`, [[b, MISSING, a, b]]);
  assert.deepEqual(r.rows.map((x) => [x.request_id, x.status, x.error]), [
    [b, 'failed', 'model exploded'],
    [MISSING, 'not_found', null],
    [a, 'pending', null],
    [b, 'failed', 'model exploded'],
  ]);
  assert.deepEqual(Object.keys(r.rows[0]), ['request_id', 'status', 'result', 'error', 'created_at', 'completed_at']);
  assert.ok(r.rows[0].completed_at, 'failed rows get completed_at');
});

test('get_async_result returns a result that a worker commits while it waits', async () => {
  const id = await enqueue('wait for me');
  const waiting = db.pool.query(`SELECT steadytext_get_async_result($1, timeout_seconds := 10) AS r`, [id]);
  await new Promise((r) => setTimeout(r, 300));
  await claim(db.pool, id);
  await complete(db.pool, id, 'worth the wait');
  const t0 = Date.now();
  assert.equal((await waiting).rows[0].r, 'worth the wait');
  assert.ok(Date.now() - t0 < 1000);
  // already completed: default timeout, immediate
  assert.equal((await db.pool.query(`SELECT steadytext_get_async_result($1) AS r`, [id])).rows[0].r, 'worth the wait');
});

test('get_async_result errors: unknown, failed, cancelled, timeout, bad arguments', async () => {
  const f = 'steadytext_get_async_result';
  await assertSqlError(db.pool, `SELECT ${f}($1)`, [MISSING], 'P0002', `${f}: request ${MISSING} does not exist`);
  const failed = await enqueue('will fail');
  await fail(db.pool, failed, 'out of memory');
  const e = await assertSqlError(db.pool, `SELECT ${f}($1)`, [failed], 'STX01', 'failed: out of memory');
  assert.equal((e as Error & { detail?: string }).detail, 'out of memory');
  const cancelled = await enqueue('will be cancelled');
  await db.pool.query(`SELECT steadytext_cancel_async($1)`, [cancelled]);
  await assertSqlError(db.pool, `SELECT ${f}($1)`, [cancelled], 'STX02', 'was cancelled');
  const slow = await enqueue('never done');
  const t0 = Date.now();
  await assertSqlError(db.pool, `SELECT ${f}($1, timeout_seconds := 1)`, [slow], 'STX03', 'did not finish within 1 seconds');
  const ms = Date.now() - t0;
  assert.ok(ms >= 900 && ms < 2500, `timeout took ${ms} ms`);
  await assertSqlError(db.pool, `SELECT ${f}($1, 0)`, [slow], 'STX03');
  await assertSqlError(db.pool, `SELECT ${f}(NULL)`, [], '22004', 'request_id');
  await assertSqlError(db.pool, `SELECT ${f}($1, -1)`, [slow], '22023', 'timeout_seconds');
});

test('cancel_async: pending and processing become cancelled with a NOTIFY; finished ones are untouched', async () => {
  const l = await listen(await db.connect(), 'steadytext_cancelled');
  const pending = await enqueue('cancel pending');
  const processing = await enqueue('cancel processing');
  await claim(db.pool, processing);
  const done = await enqueue('cancel done');
  await complete(db.pool, done, 'ok');
  const cancel = async (id: string) => (await db.pool.query(`SELECT steadytext_cancel_async($1) AS c`, [id])).rows[0].c;
  assert.equal(await cancel(pending), true);
  assert.equal(await cancel(processing), true);
  assert.equal(await cancel(done), false);
  assert.equal(await cancel(pending), false, 'a second cancel changes nothing');
  assert.equal(await cancel(MISSING), false);
  const rows = await db.pool.query(
    `SELECT request_id, status, error, completed_at FROM steadytext_queue WHERE request_id = ANY($1) ORDER BY created_at`,
    [[pending, processing, done]],
  );
  const by = Object.fromEntries(rows.rows.map((x) => [x.request_id, x]));
  assert.equal(by[pending].status, 'cancelled');
  assert.equal(by[processing].status, 'cancelled');
  assert.match(by[pending].error, /cancelled by user/);
  assert.ok(by[pending].completed_at && by[processing].completed_at);
  assert.equal(by[done].status, 'completed');
  assert.deepEqual((await l.waitFor(2)).sort(), [pending, processing].sort());
});

test('steadytext_completed: exactly one NOTIFY per terminal transition, with batch_id for batches', async () => {
  const l = await listen(await db.connect(), 'steadytext_completed');
  const id = await enqueue('notify on completion');
  await claim(db.pool, id);
  await db.pool.query(`UPDATE steadytext_queue SET result = 'partial' WHERE request_id = $1`, [id]); // not terminal
  await complete(db.pool, id, 'final');
  await db.pool.query(`UPDATE steadytext_queue SET status = 'completed', error = 'x' WHERE request_id = $1`, [id]); // no transition
  const [b0, b1] = (await db.pool.query(`SELECT steadytext_embed_batch_async(ARRAY['n1','n2'], use_cache := false) AS ids`)).rows[0].ids;
  await fail(db.pool, b0, 'bad');
  await db.pool.query(`SELECT steadytext_cancel_async($1)`, [b1]);
  const batchId = (await db.pool.query(`SELECT batch_id FROM steadytext_queue WHERE request_id = $1`, [b0])).rows[0].batch_id;
  const got = (await l.waitFor(3)).map((p) => JSON.parse(p));
  assert.deepEqual(got, [
    { request_id: id, function: 'generate', status: 'completed' },
    { request_id: b0, function: 'embed', status: 'failed', batch_id: batchId },
    { request_id: b1, function: 'embed', status: 'cancelled', batch_id: batchId },
  ]);
});

test('steadytext_completed from set-based statements: one NOTIFY per row that enters a terminal state, none for the rest', async () => {
  const l = await listen(await db.connect(), 'steadytext_completed');
  // Everything sent before the sentinel has arrived once the sentinel has
  // (notifications are delivered in commit order): no waiting on a clock.
  const drain = async (tag: string) => {
    await db.pool.query(`SELECT pg_notify('steadytext_completed', $1)`, [tag]);
    await waitFor(`sentinel ${tag}`, async () => l.payloads.includes(tag), 60_000);
    const at = l.payloads.indexOf(tag);
    return l.payloads.splice(0, at + 1).slice(0, at).map((p) => JSON.parse(p));
  };
  const n = 1000;
  const ids: string[] = (await db.pool.query(
    `SELECT steadytext_generate_batch_async(array(SELECT 'set-based ' || i FROM generate_series(1, $1::int) AS i), use_cache := false) AS ids`,
    [n])).rows[0].ids;
  // a claim of every row: no terminal transition
  await db.pool.query(`UPDATE steadytext_queue SET status = 'processing', worker_id = 'w', attempt = attempt + 1, started_at = now()
                       WHERE request_id = ANY($1::uuid[])`, [ids]);
  assert.deepEqual(await drain('after-claim'), []);
  // completing all of them inside a data-modifying WITH, as the worker does
  await db.pool.query(`WITH done AS (
                         UPDATE steadytext_queue SET status = 'completed', result = 'r', completed_at = now()
                         WHERE request_id = ANY($1::uuid[]) RETURNING request_id)
                       SELECT count(*) FROM done`, [ids.slice(0, n - 10)]);
  const completed = await drain('after-complete');
  assert.equal(completed.length, n - 10);
  assert.deepEqual(completed.map((p) => p.request_id).sort(), ids.slice(0, n - 10).sort());
  assert.ok(completed.every((p) => p.status === 'completed' && p.function === 'generate' && p.batch_id));
  // one statement over all rows: the 10 still processing are cancelled (one
  // NOTIFY each); the completed ones keep their state (none)
  await db.pool.query(`UPDATE steadytext_queue SET status = CASE WHEN status = 'processing' THEN 'cancelled' ELSE status END
                       WHERE request_id = ANY($1::uuid[])`, [ids]);
  const cancelled = await drain('after-cancel');
  assert.deepEqual(cancelled.map((p) => p.request_id).sort(), ids.slice(n - 10).sort());
  assert.ok(cancelled.every((p) => p.status === 'cancelled'));
  // rows born terminal (a batch answered from the cache) send one each
  await db.pool.query(`INSERT INTO steadytext_cache (cache_key, function_name, model_id, parameters, result)
                       SELECT cache_key, function_name, model_id, parameters, 'cached' FROM steadytext_queue
                       WHERE request_id = ANY($1::uuid[])`, [ids.slice(0, 3)]);
  const again: string[] = (await db.pool.query(
    `SELECT steadytext_generate_batch_async(ARRAY['set-based 1', 'set-based 2', 'set-based 3', 'set-based new']) AS ids`)).rows[0].ids;
  const born = await drain('after-insert');
  assert.deepEqual(born.map((p) => p.request_id).sort(), again.slice(0, 3).sort());
  assert.ok(born.every((p) => p.status === 'completed'));
});

test('retry_failed puts a failed job back to pending (keeping retry_count and error); other states are refused', async () => {
  const l = await listen(await db.connect(), 'steadytext_new_job');
  const id = await enqueue('retry me');
  await claim(db.pool, id);
  await db.pool.query(`UPDATE steadytext_queue SET retry_count = 2 WHERE request_id = $1`, [id]);
  await fail(db.pool, id, 'transient');
  await l.waitFor(1);
  l.payloads.length = 0;
  const retry = async () => (await db.pool.query(`SELECT steadytext_retry_failed($1) AS r`, [id])).rows[0].r;
  assert.equal(await retry(), true);
  const r = (await db.pool.query(`SELECT status, retry_count, error, completed_at, failed_at, started_at FROM steadytext_queue WHERE request_id = $1`, [id])).rows[0];
  assert.equal(r.status, 'pending');
  assert.equal(r.retry_count, 2);
  assert.equal(r.error, 'transient');
  assert.equal(r.completed_at, null);
  assert.equal(r.started_at, null);
  assert.ok(r.failed_at);
  assert.deepEqual(await l.waitFor(1), ['']);
  assert.equal(await retry(), false, 'a pending job is not retried');
  assert.equal((await db.pool.query(`SELECT steadytext_retry_failed($1) AS r`, [MISSING])).rows[0].r, false);
});

test('retry_failed gives the retried job the model id and cache key of the models configured now', async () => {
  const id = await enqueue('retry onto other models');
  const before = (await db.pool.query(`SELECT model_id, cache_key FROM steadytext_queue WHERE request_id = $1`, [id])).rows[0];
  await claim(db.pool, id);
  await fail(db.pool, id, 'the old model is gone');
  await db.pool.query(`INSERT INTO steadytext_config (key, value) VALUES ('model.generation', '"another-model"')
                       ON CONFLICT (key) DO UPDATE SET value = excluded.value`);
  try {
    assert.equal((await db.pool.query(`SELECT steadytext_retry_failed($1) AS r`, [id])).rows[0].r, true);
    const after = (await db.pool.query(
      `SELECT model_id, cache_key, cache_key = steadytext_cache_key('generate', 'another-model', parameters) AS derived
       FROM steadytext_queue WHERE request_id = $1`, [id])).rows[0];
    assert.notEqual(before.model_id, 'another-model');
    assert.equal(after.model_id, 'another-model');
    assert.notEqual(after.cache_key, before.cache_key);
    assert.equal(after.derived, true);
  } finally {
    await db.pool.query(`DELETE FROM steadytext_config WHERE key = 'model.generation'`);
  }
});

test('steadytext_embedding parses a completed embed result into real[]', async () => {
  const id = (await db.pool.query(`SELECT steadytext_embed_async('vec') AS id`)).rows[0].id;
  await assertSqlError(db.pool, `SELECT steadytext_embedding($1)`, [id], '55000', 'pending');
  await complete(db.pool, id, '[0.6,-0.8,0]');
  const r = await db.pool.query(`SELECT steadytext_embedding($1) AS v, pg_typeof(steadytext_embedding($1))::text AS t`, [id]);
  assert.deepEqual(r.rows[0].v, [0.6, -0.8, 0]);
  assert.equal(r.rows[0].t, 'real[]');
  const gen = await enqueue('not an embedding');
  await assertSqlError(db.pool, `SELECT steadytext_embedding($1)`, [gen], '22023', 'not an embedding');
  await assertSqlError(db.pool, `SELECT steadytext_embedding($1)`, [MISSING], 'P0002');
});
