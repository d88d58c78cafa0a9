// A pipeline's writes commit without waiting for the disk (docs/pipelines.md,
// "What a batch costs the bookkeeping"): a server crash may lose one the
// worker saw succeed. Its rows would then stay 'processing' under a worker
// that is alive, which the reclaim never takes from. So a worker that finds
// the server restarted (its listen connection comes back to a server with
// another start time) puts every row it holds back to pending.
//
// The lost write is made by hand: a row left 'processing' under the running
// worker with a claim it does not hold, its value gone; then the test's own
// server restarts, and the row must be computed again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startOwnServer } from '../chaos/harness.ts';
import { column, createDocuments, createPipeline, scriptedVector, startTestWorker, status, waitFor } from './fixtures.ts';

test('after a server restart, a row whose acknowledged write was lost is computed again by the same live worker', async () => {
  const server = await startOwnServer();
  const pool = new pg.Pool({ connectionString: server.url, max: 2 });
  pool.on('error', () => {}); // its idle connections die with the server
  let worker: Awaited<ReturnType<typeof startTestWorker>> | undefined;
  try {
    await createDocuments(pool, ['first', 'second']);
    worker = await startTestWorker(server.url, { heartbeatTimeout: '10' });
    await createPipeline(pool, { name: 'doc_embeddings' });
    await waitFor('the backfill', async () => (await status(pool, 'doc_embeddings')).done === 2);

    // what a write lost in a crash leaves: the row still this worker's, under a claim it no longer holds
    await pool.query(
      `UPDATE steadytext_pipeline_rows SET status = 'processing', worker_id = $1, claim = claim + 1, have_hash = NULL
       WHERE row_key = '[1]'`,
      [worker.workerId],
    );
    await pool.query(`UPDATE documents SET embedding = NULL WHERE id = 1`);

    await server.restart('fast');
    await waitFor('row [1] computed again after the restart', async () => {
      const r = await pool.query(`SELECT status FROM steadytext_pipeline_rows WHERE row_key = '[1]'`).catch(() => undefined);
      return r?.rows[0]?.status === 'done';
    });
    assert.deepEqual((await column(pool, 'embedding')).get(1), await scriptedVector('first'));
    assert.equal((await status(pool, 'doc_embeddings')).done, 2);
  } finally {
    await worker?.stop();
    await pool.end().catch(() => {});
    await server.stop();
  }
});
