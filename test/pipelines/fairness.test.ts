// Interactive queue work goes first: with one worker of concurrency 1 and a
// pipeline backfilling, a queue request with a higher priority starts before
// the next pipeline batch (it waits at most the batch on the engine; a
// generate batch gives its slot up between rows). Asserted on the engine's
// call order, never on timing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { events } from '../helpers/scriptedEngine.ts';
import { createDocuments, createPipeline, gate, startTestWorker, status, waitFor } from './fixtures.ts';

async function queueStatus(db: { pool: import('pg').Pool }, id: string): Promise<string> {
  return (await db.pool.query(`SELECT status FROM steadytext_queue WHERE request_id = $1`, [id])).rows[0].status;
}

test('embed backfill at concurrency 1: a higher-priority request runs before the next pipeline batch', async () => {
  const db = await createTestDatabase();
  const g = gate();
  await createDocuments(db.pool, Array.from({ length: 6 }, () => g.script));
  const worker = await startTestWorker(db.url, { concurrency: 1, pipelineBatchSize: 1, heartbeatTimeout: '10' });
  const before = events.length;
  try {
    await createPipeline(db.pool, { name: 'doc_embeddings' });
    await waitFor('a batch on the engine and the next one claimed ahead', async () => {
      const s = await status(db.pool, 'doc_embeddings');
      return events.slice(before).length === 1 && s.processing === 2;
    });
    const id = (await db.pool.query(`SELECT steadytext_generate_async('interactive', priority := 10, use_cache := false) AS id`)).rows[0]
      .id as string;
    await waitFor('the request waiting in the worker for the slot', async () => worker.stats.buffered === 1);
    g.open();
    await waitFor('the request completed and the pipeline caught up', async () => {
      const s = await status(db.pool, 'doc_embeddings');
      return (await queueStatus(db, id)) === 'completed' && s.done === 6;
    });
    const order = events.slice(before).map((e) => (e.call === 'generate' ? e.inputs[0] : e.call));
    assert.deepEqual(order, ['embed', 'interactive', 'embed', 'embed', 'embed', 'embed', 'embed']);
  } finally {
    await worker.stop();
    g.dispose();
    await db.drop();
  }
});

test('generate batch at concurrency 1: a request that starts waiting takes the slot after the row on the engine, the rest of the batch waits', async () => {
  const db = await createTestDatabase();
  const g = gate();
  await createDocuments(db.pool, Array.from({ length: 4 }, () => g.script));
  const worker = await startTestWorker(db.url, { concurrency: 1, heartbeatTimeout: '10' });
  const before = events.length;
  try {
    // One batch of the four rows (generate's default batch_size is 8).
    await createPipeline(db.pool, { name: 'doc_summaries', destination: 'summary', functionName: 'generate' });
    await waitFor('the batch\'s first row on the engine', async () => events.slice(before).length === 1);
    const id = (await db.pool.query(`SELECT steadytext_generate_async('interactive', priority := 10, use_cache := false) AS id`)).rows[0]
      .id as string;
    // waiting in the worker for the slot (claimed in the database is not enough:
    // the claim's reply may still be on its way when the row ends)
    await waitFor('the request waiting in the worker', async () => worker.stats.buffered === 1);
    g.open();
    await waitFor('the request completed and the pipeline caught up', async () => {
      const s = await status(db.pool, 'doc_summaries');
      return (await queueStatus(db, id)) === 'completed' && s.done === 4;
    });
    const order = events.slice(before).map((e) => (e.inputs[0] === 'interactive' ? 'interactive' : 'row'));
    assert.deepEqual(order, ['row', 'interactive', 'row', 'row', 'row']);
    assert.equal(worker.stats.pipelineRows.released, 3, 'the batch\'s three rows not run went back, no attempt counted');
    const attempts = await db.pool.query(`SELECT max(attempts)::int AS n FROM steadytext_pipeline_rows`);
    assert.equal(attempts.rows[0].n, 0);
  } finally {
    await worker.stop();
    g.dispose();
    await db.drop();
  }
});
