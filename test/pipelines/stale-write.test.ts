// A result computed from an input that changed (or a row deleted) while its
// batch was on the engine is never written: the scripted engine holds the
// batch at a gate until the test has changed the row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { events } from '../helpers/scriptedEngine.ts';
import { createDocuments, createPipeline, failures, gate, scriptedVector, startTestWorker, status, waitFor } from './fixtures.ts';

const onEngine = (text: string) => () => Promise.resolve(events.some((e) => e.call === 'embed' && e.inputs.includes(text)));

test('input changed while its batch is on the engine: the old result is never written, the new input is computed', async () => {
  const db = await createTestDatabase();
  const g = gate();
  await createDocuments(db.pool, [g.script]);
  // Every value ever written to the destination (the trigger names its table as users do, without a schema).
  await db.pool.query(`CREATE TABLE written (id integer, embedding double precision[])`);
  await db.pool.query(`CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO written VALUES (NEW.id, NEW.embedding); RETURN NEW; END $$`);
  await db.pool.query(`CREATE TRIGGER audit AFTER UPDATE OF embedding ON documents FOR EACH ROW EXECUTE FUNCTION audit()`);
  const worker = await startTestWorker(db.url, { heartbeatTimeout: '10' });
  try {
    await createPipeline(db.pool, { name: 'doc_embeddings' });
    await waitFor('the batch on the engine', onEngine(g.script));
    await db.pool.query(`UPDATE documents SET content = 'the new content' WHERE id = 1`);
    g.open();
    const expected = await scriptedVector('the new content');
    await waitFor('the new content embedded', async () => {
      const r = await db.pool.query(`SELECT embedding FROM documents WHERE id = 1`);
      return JSON.stringify(r.rows[0].embedding) === JSON.stringify(expected);
    });
    const w = await db.pool.query(`SELECT embedding FROM written`);
    assert.deepEqual(w.rows.map((r) => r.embedding), [expected], 'only the new input\'s vector was ever written');
    const s = await status(db.pool, 'doc_embeddings');
    assert.deepEqual([s.done, s.pending, s.processing, s.failed], [1, 0, 0, 0]);
  } finally {
    await worker.stop();
    g.dispose();
    await db.drop();
  }
});

test('a row deleted while its batch is on the engine: nothing written anywhere, nothing failed, the row stays gone', async () => {
  const db = await createTestDatabase();
  const g = gate();
  await createDocuments(db.pool, [g.script, 'kept']);
  // Another table as the destination: a late write would upsert a row there.
  await db.pool.query(`CREATE TABLE doc_vectors (id integer PRIMARY KEY, embedding double precision[])`);
  const worker = await startTestWorker(db.url, { heartbeatTimeout: '10', pipelineBatchSize: 1 });
  try {
    await createPipeline(db.pool, { name: 'doc_vectors', destination: 'doc_vectors.embedding' });
    await waitFor('the batch on the engine', onEngine(g.script));
    await db.pool.query(`DELETE FROM documents WHERE id = 1`);
    g.open();
    // Both rows' outcomes recorded by the worker: row 2 written, row 1's result not (lost: its row is gone).
    await waitFor('both outcomes recorded', async () => worker.stats.pipelineRows.written === 1 && worker.stats.pipelineRows.lost === 1);
    const r = await db.pool.query(`SELECT id, embedding FROM doc_vectors ORDER BY id`);
    assert.deepEqual(r.rows, [{ id: 2, embedding: await scriptedVector('kept') }], 'nothing was upserted for the deleted row');
    const s = await status(db.pool, 'doc_vectors');
    assert.deepEqual([s.rows, s.done, s.pending, s.processing, s.failed], [1, 1, 0, 0, 0]);
    assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM documents WHERE id = 1`)).rows[0].n, 0, 'the row did not come back');
    assert.deepEqual(await failures(db.pool, 'doc_vectors'), []);
  } finally {
    await worker.stop();
    g.dispose();
    await db.drop();
  }
});
