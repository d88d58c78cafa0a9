// A fault of the machine (the engine throws anything but an input error):
// the batch's rows go back to pending with a backoff, an attempt counted, and
// are computed once the engine works again. A pipeline whose vectors do not
// fit its destination is refused: blocked with a last_error that says what to
// do, nothing written, until it is resumed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase } from '../helpers/db.ts';
import { column, createDocuments, createPipeline, failures, scriptedVector, startTestWorker, status, waitFor } from './fixtures.ts';

test('an engine fault sends the batch back with backoff (attempts counted); it is computed once the engine works', async () => {
  const db = await createTestDatabase();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'st-pipeline-fault-'));
  const broken = path.join(dir, 'engine-down');
  writeFileSync(broken, '');
  const script = `fail-while-file:${broken}`;
  await createDocuments(db.pool, [script]);
  const worker = await startTestWorker(db.url, { heartbeatTimeout: '10', retryBackoff: '0.05', retryBackoffMax: '0.2' });
  try {
    await createPipeline(db.pool, { name: 'doc_embeddings' });
    await waitFor('two faults met', async () => worker.stats.pipelineRows.retried >= 2);
    const attempts = await db.pool.query(`SELECT attempts, status, error FROM steadytext_pipeline_rows`);
    assert.ok(attempts.rows[0].attempts >= 1, JSON.stringify(attempts.rows));
    assert.match(attempts.rows[0].error, /engine-down exists/);
    assert.equal((await column(db.pool, 'embedding')).get(1), null);
    rmSync(broken);
    const expected = await scriptedVector(script);
    await waitFor('written once the engine works', async () => JSON.stringify((await column(db.pool, 'embedding')).get(1)) === JSON.stringify(expected));
    const s = await status(db.pool, 'doc_embeddings');
    assert.deepEqual([s.done, s.failed], [1, 0]);
    assert.ok(!existsSync(broken));
  } finally {
    await worker.stop();
    rmSync(dir, { recursive: true, force: true });
    await db.drop();
  }
});

test('vectors of another size than the destination holds: the pipeline is refused with a message saying what to do, then resumed', async () => {
  const db = await createTestDatabase();
  await createDocuments(db.pool, ['one', 'two']);
  const worker = await startTestWorker(db.url, { heartbeatTimeout: '10' });
  try {
    // The scripted engine's vectors have 4 dimensions. pgvector is not in the
    // test server: the destination's size (a vector(3) column's) is set where
    // the pipeline keeps it, before the worker sees the pipeline.
    await db.pool.query('BEGIN');
    await createPipeline(db.pool, { name: 'doc_embeddings' });
    await db.pool.query(`UPDATE steadytext_pipelines SET dimensions = 3 WHERE name = 'doc_embeddings'`);
    await db.pool.query('COMMIT');
    const blocked = await waitFor('the pipeline blocked', async () => {
      const s = await status(db.pool, 'doc_embeddings');
      return s.last_error ? s : null;
    });
    assert.match(blocked.last_error!, /gives vectors of 4 dimensions, but the destination of pipeline 'doc_embeddings' holds 3/);
    assert.match(blocked.last_error!, /steadytext_pipeline_resume\('doc_embeddings'\)/);
    assert.equal(worker.stats.pipelineRows.written, 0);
    assert.deepEqual([...(await column(db.pool, 'embedding')).values()], [null, null], 'nothing written');
    assert.deepEqual([blocked.pending + blocked.processing, blocked.failed], [2, 0], 'its rows wait, none failed');

    await db.pool.query(`UPDATE steadytext_pipelines SET dimensions = 4 WHERE name = 'doc_embeddings'`);
    await db.pool.query(`SELECT steadytext_pipeline_resume('doc_embeddings')`);
    await waitFor('filled after the resume', async () => {
      const s = await status(db.pool, 'doc_embeddings');
      return s.done === 2 && s.last_error === null;
    });
    assert.deepEqual((await column(db.pool, 'embedding')).get(2), await scriptedVector('two'));
    assert.deepEqual(await failures(db.pool, 'doc_embeddings'), []);
  } finally {
    await worker.stop();
    await db.drop();
  }
});
