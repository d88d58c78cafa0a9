// After the backfill: an insert and a change of the input are computed, a
// change of another column is not, a deleted row leaves nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { events } from '../helpers/scriptedEngine.ts';
import { column, createDocuments, createPipeline, failures, scriptedVector, startTestWorker, status, waitFor } from './fixtures.ts';

test('an insert and an input change are computed; a change of another column records nothing and is not recomputed; a delete', async () => {
  const db = await createTestDatabase();
  await createDocuments(db.pool, ['alpha', 'beta', 'gamma']);
  const worker = await startTestWorker(db.url, { heartbeatTimeout: '10' });
  try {
    await createPipeline(db.pool, { name: 'doc_embeddings' });
    const caughtUp = (rows: number) => async () => {
      const s = await status(db.pool, 'doc_embeddings');
      return s.rows === rows && s.done === rows && s.pending + s.processing === 0 ? s : null;
    };
    await waitFor('the backfill', caughtUp(3));
    const before = events.length;

    await db.pool.query(`UPDATE documents SET title = 'renamed' WHERE id = 1`);
    const untouched = await status(db.pool, 'doc_embeddings');
    assert.equal(untouched.pending + untouched.processing, 0, 'a change of another column marks nothing');

    await db.pool.query(`INSERT INTO documents (id, content) VALUES (4, 'delta')`);
    await db.pool.query(`UPDATE documents SET content = 'beta, rewritten' WHERE id = 2`);
    await waitFor('the insert and the change computed', async () => {
      const e = await column(db.pool, 'embedding');
      const [v2, v4] = [await scriptedVector('beta, rewritten'), await scriptedVector('delta')];
      return JSON.stringify(e.get(2)) === JSON.stringify(v2) && JSON.stringify(e.get(4)) === JSON.stringify(v4) && (await caughtUp(4)());
    });
    // (scriptedVector adds engine calls of its own, never with these two texts.)
    const inputs = events.slice(before).filter((e) => e.call === 'embed').flatMap((e) => e.inputs);
    assert.ok(!inputs.includes('alpha'), 'the row whose title changed was not embedded again');
    assert.ok(!inputs.includes('gamma'), 'an untouched row was not embedded again');
    const e = await column(db.pool, 'embedding');
    assert.deepEqual(e.get(1), await scriptedVector('alpha'), 'row 1 keeps its value');

    await db.pool.query(`DELETE FROM documents WHERE id = 3`);
    await waitFor('the delete forgotten', caughtUp(3));
    assert.deepEqual(await failures(db.pool, 'doc_embeddings'), []);
  } finally {
    await worker.stop();
    await db.drop();
  }
});
