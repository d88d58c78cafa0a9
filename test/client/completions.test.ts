// st.completions(): every NOTIFY steadytext_completed once, on its own
// connection, given back when the loop ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SteadyText, type CompletionPayload } from '../../src/client/index.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { startTestWorker, waitFor } from '../worker/fixtures/queue.ts';

// db.drop() ends the pool, then DROP DATABASE ... WITH (FORCE): a backend still closing
// reports 57P01 to its (removed) client, which the pool re-emits; without a listener
// that would be an uncaught exception in whichever test runs next.
const ignoreDropError = () => {};

const listeners = async (pool: import('pg').Pool) =>
  (
    await pool.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND query = 'LISTEN steadytext_completed'`,
    )
  ).rows[0].n as number;

test('completions() yields each job once, failed and cancelled ones too, and cleans up on break', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const worker = await startTestWorker(db.url, { concurrency: 4, maxRetries: '0' });
  const st = new SteadyText(db.pool);
  try {
    const stream = st.completions();
    await stream.ready;
    assert.equal(await listeners(db.pool), 1);
    const ids = [
      ...(await st.generateBatchAsync(['a', 'b', 'c', 'd', 'e'], { useCache: false })),
      await st.embedAsync('vector', { useCache: false }),
      await st.generateAsync('throw:nope', { useCache: false }),
      await st.generateAsync('hang', { useCache: false }),
    ];
    await st.cancel(ids[7]);
    const seen: CompletionPayload[] = [];
    for await (const done of stream) {
      seen.push(done);
      if (seen.length === ids.length) break;
    }
    assert.deepEqual(new Set(seen.map((p) => p.request_id)), new Set(ids));
    const byId = new Map(seen.map((p) => [p.request_id, p]));
    assert.equal(byId.get(ids[0])!.function, 'generate');
    assert.equal(byId.get(ids[0])!.status, 'completed');
    assert.ok(byId.get(ids[0])!.batch_id, 'batch rows carry their batch_id');
    assert.deepEqual(byId.get(ids[5]), { request_id: ids[5], function: 'embed', status: 'completed' });
    assert.equal(byId.get(ids[6])!.status, 'failed');
    assert.equal(byId.get(ids[7])!.status, 'cancelled');

    // break gave the connection back, without its LISTEN.
    await waitFor('no LISTEN left', async () => (await listeners(db.pool)) === 0, 2000);
    assert.equal(db.pool.totalCount, db.pool.idleCount);
  } finally {
    await st.close();
    await worker.stop();
    await db.drop();
  }
});

test('completions() filters by batch and function, and an AbortSignal ends the loop', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const worker = await startTestWorker(db.url, { concurrency: 2 });
  const st = new SteadyText(db.pool);
  try {
    const stop = new AbortController();
    const embeds = st.completions({ functions: ['embed'], signal: stop.signal });
    await embeds.ready;
    // Enqueue in a transaction so the stream for the batch listens before any of it can run.
    const tx = await db.pool.connect();
    await tx.query('BEGIN');
    const ids = (await tx.query(`SELECT steadytext_embed_batch_async(ARRAY['x','y'], use_cache := false) AS v`)).rows[0].v;
    const batchId = (await tx.query(`SELECT batch_id FROM steadytext_queue WHERE request_id = $1`, [ids[0]])).rows[0].batch_id;
    const batch = st.completions({ batchId });
    await batch.ready;
    await tx.query('COMMIT');
    tx.release();
    await st.generateAsync('not an embed', { useCache: false });
    await st.generateBatchAsync(['p', 'q'], { useCache: false });

    const got: CompletionPayload[] = [];
    setTimeout(() => stop.abort(), 1500);
    for await (const done of embeds) got.push(done);
    assert.equal(got.length, 2);
    assert.ok(got.every((p) => p.function === 'embed' && p.batch_id === batchId));

    const fromBatch: string[] = [];
    const closer = setTimeout(() => void batch.return(), 1000);
    for await (const done of batch) fromBatch.push(done.request_id);
    clearTimeout(closer);
    assert.equal(fromBatch.length, 2);
  } finally {
    await st.close();
    await waitFor('no LISTEN left', async () => (await listeners(db.pool)) === 0, 2000);
    await worker.stop();
    await db.drop();
  }
});
