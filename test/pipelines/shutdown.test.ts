// Worker stop: the pipeline batch claimed ahead goes back at once, the one on
// the engine gets the grace (its result is written when it ends in time, its
// rows go back when it does not), no attempt counted either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { events } from '../helpers/scriptedEngine.ts';
import { column, createDocuments, createPipeline, gate, scriptedVector, startTestWorker, status, waitFor } from './fixtures.ts';

async function rows(db: { pool: import('pg').Pool }) {
  return (await db.pool.query(`SELECT row_key, status, worker_id, attempts FROM steadytext_pipeline_rows ORDER BY row_key`)).rows;
}

test('stop past the grace: the running batch is aborted, every held row back to pending with no attempt counted', async () => {
  const db = await createTestDatabase();
  const g = gate();
  await createDocuments(db.pool, [g.script, g.script]);
  const worker = await startTestWorker(db.url, { concurrency: 1, pipelineBatchSize: 1, heartbeatTimeout: '10', shutdownGrace: '0.2' });
  const before = events.length;
  try {
    await createPipeline(db.pool, { name: 'doc_embeddings' });
    await waitFor('one batch on the engine, one claimed ahead', async () => {
      const s = await status(db.pool, 'doc_embeddings');
      return events.slice(before).length === 1 && s.processing === 2;
    });
    await worker.stop();
    assert.equal(events.slice(before)[0].outcome, 'aborted', 'the engine call was aborted');
    assert.deepEqual(
      (await rows(db)).map((r) => [r.status, r.worker_id, r.attempts]),
      [['pending', null, 0], ['pending', null, 0]],
    );
    assert.deepEqual(worker.stats.pipelineRows.released, 2);
  } finally {
    await worker.stop();
    g.dispose();
    await db.drop();
  }
});

test('stop within the grace: the running batch is written, the one claimed ahead goes back at once', async () => {
  const db = await createTestDatabase();
  const g = gate();
  await createDocuments(db.pool, [g.script, g.script]);
  const worker = await startTestWorker(db.url, { concurrency: 1, pipelineBatchSize: 1, heartbeatTimeout: '10', shutdownGrace: '60' });
  const before = events.length;
  try {
    await createPipeline(db.pool, { name: 'doc_embeddings' });
    await waitFor('one batch on the engine, one claimed ahead', async () => {
      const s = await status(db.pool, 'doc_embeddings');
      return events.slice(before).length === 1 && s.processing === 2;
    });
    const stopped = worker.stop();
    await waitFor('the batch claimed ahead released', async () => (await status(db.pool, 'doc_embeddings')).pending === 1);
    g.open();
    await stopped;
    const r = await rows(db);
    assert.deepEqual(r.map((x) => x.status).sort(), ['done', 'pending']);
    assert.ok(r.every((x) => x.attempts === 0 && x.worker_id === null), JSON.stringify(r));
    const values = [...(await column(db.pool, 'embedding')).values()];
    assert.deepEqual(values.filter((v) => v !== null), [await scriptedVector(g.script)]);
  } finally {
    await worker.stop();
    g.dispose();
    await db.drop();
  }
});
