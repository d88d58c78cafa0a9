// NOTIFY steadytext_pipeline wakes the runner: with a poll interval far
// beyond the wait, a pipeline created and rows inserted after the worker
// started are computed all the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { column, createDocuments, createPipeline, scriptedVector, startTestWorker, status, waitFor } from './fixtures.ts';

test('with a 10-minute poll interval, a new pipeline and a new row are computed on their NOTIFY', async () => {
  const db = await createTestDatabase();
  await createDocuments(db.pool, ['first']);
  const worker = await startTestWorker(db.url, { pollInterval: '600', heartbeatTimeout: '10' });
  try {
    // The worker's first look found nothing: from now on only a NOTIFY (or the poll, minutes away) wakes it.
    await createPipeline(db.pool, { name: 'doc_embeddings' });
    await waitFor('the backfill', async () => (await status(db.pool, 'doc_embeddings')).done === 1, 60_000);
    await db.pool.query(`INSERT INTO documents (id, content) VALUES (2, 'second')`);
    await waitFor('the new row', async () => (await status(db.pool, 'doc_embeddings')).done === 2, 60_000);
    assert.deepEqual((await column(db.pool, 'embedding')).get(2), await scriptedVector('second'));
  } finally {
    await worker.stop();
    await db.drop();
  }
});
