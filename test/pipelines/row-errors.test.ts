// One row's failure is that row's alone: a CHECK constraint or a trigger of
// the destination refusing its value, or the engine refusing its input,
// fails that row (steadytext_pipeline_failures says why) and the rest of its
// batch is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { column, createDocuments, createPipeline, failures, startTestWorker, status, waitFor } from './fixtures.ts';

test('a CHECK constraint, a trigger and an input the engine refuses each fail their own row; the batch\'s other rows are written', async () => {
  const db = await createTestDatabase();
  await createDocuments(db.pool, ['fine one', 'forbidden', 'trigger-me', 'bad-input:the engine refuses this text', 'fine two'], `,
    CHECK (summary IS DISTINCT FROM 'echo:forbidden')`);
  await db.pool.query(`CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.content = 'trigger-me' AND NEW.summary IS NOT NULL THEN
        RAISE EXCEPTION 'the trigger refuses row %', NEW.id;
      END IF;
      RETURN NEW;
    END $$`);
  await db.pool.query(`CREATE TRIGGER refuse_row BEFORE UPDATE OF summary ON documents FOR EACH ROW EXECUTE FUNCTION refuse_row()`);
  const worker = await startTestWorker(db.url, { heartbeatTimeout: '10', metricsPort: '0' });
  try {
    // One batch holds all five rows (generate's default batch_size is 8).
    await createPipeline(db.pool, { name: 'doc_summaries', destination: 'summary', functionName: 'generate' });
    await waitFor('every row settled', async () => {
      const s = await status(db.pool, 'doc_summaries');
      return s.pending + s.processing === 0 && s.done + s.failed === 5;
    });
    const summaries = await column(db.pool, 'summary');
    assert.deepEqual([...summaries.values()], ['echo:fine one', null, null, null, 'echo:fine two']);
    const f = await failures(db.pool, 'doc_summaries');
    assert.deepEqual(f.map((x) => x.row_key), [[2], [3], [4]]);
    assert.match(f[0].error, /check constraint/);
    assert.match(f[1].error, /the trigger refuses row 3/);
    assert.match(f[2].error, /the engine refuses this text/);
    const s = await status(db.pool, 'doc_summaries');
    assert.deepEqual([s.done, s.failed], [2, 3]);
    assert.equal(worker.stats.pipelineRows.failed, 3);
    assert.equal(worker.stats.pipelineRows.written, 2);
    const metrics = await (await fetch(`${worker.metricsServer!.url}/metrics`)).text();
    assert.match(metrics, /^steadytext_worker_pipeline_rows_total\{pipeline="doc_summaries",outcome="written"\} 2$/m);
    assert.match(metrics, /^steadytext_worker_pipeline_rows_total\{pipeline="doc_summaries",outcome="failed"\} 3$/m);
  } finally {
    await worker.stop();
    await db.drop();
  }
});

test('embed: a text the engine refuses fails its row alone; the call is split and the other rows get their vectors', async () => {
  const db = await createTestDatabase();
  await createDocuments(db.pool, ['one', 'two', 'refuse:too long for the model', 'four', 'five']);
  const worker = await startTestWorker(db.url, { heartbeatTimeout: '10' });
  try {
    await createPipeline(db.pool, { name: 'doc_embeddings' });
    await waitFor('every row settled', async () => {
      const s = await status(db.pool, 'doc_embeddings');
      return s.pending + s.processing === 0 && s.done + s.failed === 5;
    });
    const e = await column(db.pool, 'embedding');
    assert.deepEqual([...e.entries()].filter(([, v]) => v === null).map(([id]) => id), [3]);
    const f = await failures(db.pool, 'doc_embeddings');
    assert.deepEqual(f.map((x) => [x.row_key, x.attempts]), [[[3], 1]]);
    assert.match(f[0].error, /refuses the text "refuse:too long for the model"/);
  } finally {
    await worker.stop();
    await db.drop();
  }
});
