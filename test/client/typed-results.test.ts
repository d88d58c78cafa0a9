// The client's result(): typed values per function, named errors, and waiting
// on NOTIFY rather than polling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  JobCancelledError,
  JobFailedError,
  JobNotFoundError,
  SteadyText,
  TimeoutError,
} from '../../src/client/index.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { startTestWorker, waitFor } from '../worker/fixtures/queue.ts';

// db.drop() ends the pool, then DROP DATABASE ... WITH (FORCE): a backend still closing
// reports 57P01 to its (removed) client, which the pool re-emits; without a listener
// that would be an uncaught exception in whichever test runs next.
const ignoreDropError = () => {};

test('result() gives each function its typed value', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const worker = await startTestWorker(db.url, { concurrency: 4 });
  const st = new SteadyText(db.pool);
  try {
    const text: string = await st.result(await st.generateAsync('hello', { maxTokens: 20, seed: 7 }), { timeout: 10 });
    assert.equal(text, 'echo:hello');

    const json = await st.result(
      await st.generateJsonAsync('person', { type: 'object', properties: { echo: { type: 'string' } } }),
      { timeout: 10 },
    );
    assert.deepEqual(json, { echo: 'person' });

    assert.equal(await st.result(await st.generateRegexAsync('n', '\\d+'), { timeout: 10 }), 'regex:\\d+:n');
    assert.equal(await st.result(await st.generateChoiceAsync('ab', ['x', 'y', 'z']), { timeout: 10 }), 'z');

    const vector: number[] = await st.result(await st.embedAsync('some text'), { timeout: 10 });
    assert.ok(Array.isArray(vector) && vector.length === 4 && vector.every((x) => typeof x === 'number'));
    assert.ok(Math.abs(Math.hypot(...vector) - 1) < 1e-5, 'unit vector');

    const ranked = await st.result(await st.rerankAsync('red apple', ['green pear', 'red apple pie', 'red car']), {
      timeout: 10,
    });
    assert.deepEqual(ranked, [
      { document: 'red apple pie', score: 2, index: 1 },
      { document: 'red car', score: 1, index: 2 },
      { document: 'green pear', score: 0, index: 0 },
    ]);

    const batch = await st.generateBatchAsync(['a', 'b', 'c'], { useCache: false });
    assert.equal(batch.length, 3);
    assert.deepEqual(await st.results(batch, { timeout: 10 }), ['echo:a', 'echo:b', 'echo:c']);
    const embeds = await st.embedBatchAsync(['a', 'b']);
    assert.equal((await st.results(embeds, { timeout: 10 }))[1].length, 4);

    // The conveniences enqueue and wait.
    assert.equal(await st.generate('direct', { timeout: 10 }), 'echo:direct');
    const [v1, v2] = await st.embed(['one', 'two'], { timeout: 10 });
    assert.equal(v1.length, 4);
    assert.notDeepEqual(v1, v2);
    assert.deepEqual(await st.embed('one', { timeout: 10 }), v1);
  } finally {
    await st.close();
    await worker.stop();
    await db.drop();
  }
});

test('check() reports the state without waiting; options reach the SQL function', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const st = new SteadyText(db.pool);
  try {
    const id = await st.generateAsync('later', { maxTokens: 33, seed: 5, priority: 4, useCache: false });
    assert.match(id, /^[0-9a-f-]{36}$/);
    const state = await st.check(id);
    assert.equal(state.status, 'pending');
    assert.equal(state.functionName, 'generate');
    assert.equal(state.priority, 4);
    assert.equal(state.result, null);
    assert.ok(state.createdAt instanceof Date);
    const params = (await db.pool.query(`SELECT parameters FROM steadytext_queue WHERE request_id = $1`, [id])).rows[0]
      .parameters;
    assert.deepEqual(params, { prompt: 'later', max_tokens: 33, seed: 5, use_cache: false });

    const unknown = await st.check('00000000-0000-0000-0000-000000000000');
    assert.equal(unknown.status, 'not_found');
    assert.equal(unknown.functionName, null);

    // Validation is the SQL's: its error comes through with its SQLSTATE.
    await assert.rejects(st.generateAsync('x', { maxTokens: 0 }), (err: { code?: string; message: string }) => {
      assert.equal(err.code, '22023');
      assert.match(err.message, /max_tokens/);
      return true;
    });
    await assert.rejects(st.generateChoiceAsync('x', []), { code: '22023' });
  } finally {
    await st.close();
    await db.drop();
  }
});

test('result() rejects with JobFailedError, JobCancelledError, JobNotFoundError, TimeoutError', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const worker = await startTestWorker(db.url, { maxRetries: '0' });
  const st = new SteadyText(db.pool);
  try {
    const failing = await st.generateAsync('throw:the model caught fire', { useCache: false });
    await assert.rejects(st.result(failing, { timeout: 10 }), (err: unknown) => {
      assert.ok(err instanceof JobFailedError);
      assert.equal(err.requestId, failing);
      assert.match(err.error ?? '', /the model caught fire/);
      return true;
    });

    const hanging = await st.generateAsync('hang', { useCache: false });
    const t0 = Date.now();
    await assert.rejects(st.result(hanging, { timeout: 0.5 }), (err: unknown) => {
      assert.ok(err instanceof TimeoutError);
      assert.deepEqual(err.requestIds, [hanging]);
      return true;
    });
    const waited = Date.now() - t0;
    assert.ok(waited >= 450 && waited < 3000, `timed out after ${waited} ms`);

    // A wait in flight ends with JobCancelledError when the job is cancelled.
    const pending = st.result(hanging, { timeout: 10 });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await st.cancel(hanging), true);
    await assert.rejects(pending, JobCancelledError);
    assert.equal(await st.cancel(hanging), false, 'already cancelled');

    await assert.rejects(st.result('00000000-0000-0000-0000-000000000001', { timeout: 1 }), JobNotFoundError);
  } finally {
    await st.close();
    await worker.stop();
    await db.drop();
  }
});

test('result() waits on NOTIFY: a 1.5 s job costs a handful of queries, not a poll loop', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const worker = await startTestWorker(db.url);
  const st = new SteadyText(db.pool);
  try {
    const id = await st.generateAsync('sleep:1500', { useCache: false });
    let queries = 0;
    const query = db.pool.query.bind(db.pool);
    db.pool.query = ((...args: Parameters<typeof query>) => {
      queries++;
      return query(...args);
    }) as typeof db.pool.query;
    const t0 = Date.now();
    assert.equal(await st.result(id, { timeout: 10 }), 'echo:sleep:1500');
    const took = Date.now() - t0;
    assert.ok(took >= 1000, `resolved after ${took} ms`);
    assert.ok(queries <= 3, `${queries} queries while waiting`);
    // The LISTEN connection went back to the pool once no wait was in flight.
    await waitFor('LISTEN connection back in the pool', async () => db.pool.totalCount === db.pool.idleCount, 2000);
    const listening = await db.pool.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN steadytext_completed'`,
    );
    assert.equal(listening.rows[0].n, 0);
  } finally {
    await st.close();
    await worker.stop();
    await db.drop();
  }
});
