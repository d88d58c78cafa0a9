// A source row another session holds locked (an open transaction after
// SELECT ... FOR UPDATE) is skipped: the other rows are filled meanwhile,
// and that one once the session ends. No worker statement waits on it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { column, createDocuments, createPipeline, failures, scriptedVector, startTestWorker, status, waitFor } from './fixtures.ts';

test('a row locked by another session is skipped, the others are filled meanwhile, and it is filled once the session ends', async () => {
  const db = await createTestDatabase();
  const texts = Array.from({ length: 12 }, (_, i) => `locked-row text ${i}`);
  await createDocuments(db.pool, texts);
  const locker = await db.connect();
  const worker = await startTestWorker(db.url, { heartbeatTimeout: '10', pipelineBatchSize: 4 });
  try {
    await locker.query('BEGIN');
    await locker.query('SELECT * FROM documents WHERE id = 3 FOR UPDATE');
    await createPipeline(db.pool, { name: 'doc_embeddings' });
    const expected = await Promise.all(texts.map((t) => scriptedVector(t)));
    await waitFor('every other row filled while the lock is held', async () => {
      const e = await column(db.pool, 'embedding');
      return texts.every((_, i) => i + 1 === 3 || JSON.stringify(e.get(i + 1)) === JSON.stringify(expected[i]));
    });
    // The worker met the lock (its write said 'busy') and the row is still waiting.
    await waitFor('the locked row met', async () => worker.stats.pipelineRows.busy > 0);
    assert.equal((await column(db.pool, 'embedding')).get(3), null, 'the locked row is not written while the lock is held');
    const held = await status(db.pool, 'doc_embeddings');
    assert.equal(held.done, 11);
    assert.equal(held.failed, 0);

    await locker.query('COMMIT');
    await waitFor('the locked row filled after the session ended', async () => {
      const e = await column(db.pool, 'embedding');
      return JSON.stringify(e.get(3)) === JSON.stringify(expected[2]);
    });
    const s = await status(db.pool, 'doc_embeddings');
    assert.deepEqual([s.done, s.pending, s.processing, s.failed], [12, 0, 0, 0]);
    assert.deepEqual(await failures(db.pool, 'doc_embeddings'), []);
  } finally {
    await locker.query('ROLLBACK').catch(() => {});
    await worker.stop();
    await db.drop();
  }
});
