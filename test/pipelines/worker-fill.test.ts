// A pipeline over rows that exist before it: the worker backfills every row
// with exactly what the engine gives for its input, embed rows in one engine
// call per batch, rows with a NULL input without any.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { events } from '../helpers/scriptedEngine.ts';
import { tinyEngine } from '../engine/tinyEngine.ts';
import { writeResult } from '../../src/jobTypes.ts';
import { column, createDocuments, createPipeline, scriptedVector, startTestWorker, status, waitFor } from './fixtures.ts';

test('existing rows: every row gets exactly its own vector and summary, each input on the engine once, embed in one call per batch', async () => {
  const db = await createTestDatabase();
  const texts = Array.from({ length: 50 }, (_, i) => `document ${i}`);
  await createDocuments(db.pool, [...texts, null]);
  const worker = await startTestWorker(db.url, { pipelineBatchSize: 8, heartbeatTimeout: '10' });
  const before = events.length;
  try {
    await createPipeline(db.pool, { name: 'doc_embeddings' });
    await createPipeline(db.pool, {
      name: 'doc_summaries',
      input: `'Summarize: ' || title`,
      destination: 'summary',
      functionName: 'generate',
      parameters: { max_tokens: 16 },
    });
    await waitFor('both pipelines caught up', async () => {
      const [e, s] = [await status(db.pool, 'doc_embeddings'), await status(db.pool, 'doc_summaries')];
      return e.pending + e.processing + s.pending + s.processing === 0 && e.done === e.rows && s.done === s.rows;
    });
    // The engine's calls, before the expected vectors below add calls of their own.
    const calls = events.slice(before);
    const embeddings = await column(db.pool, 'embedding');
    for (const [i, text] of texts.entries()) assert.deepEqual(embeddings.get(i + 1), await scriptedVector(text), `row ${i + 1}`);
    assert.equal(embeddings.get(51), null, 'a NULL input makes a NULL destination');
    const summaries = await column(db.pool, 'summary');
    for (let id = 1; id <= 51; id++) assert.equal(summaries.get(id), `echo:Summarize: title ${id}`);

    const embedCalls = calls.filter((e) => e.call === 'embed');
    assert.deepEqual(embedCalls.flatMap((e) => e.inputs).sort(), [...texts].sort(), 'each text embedded once, the NULL one never');
    assert.ok(embedCalls.every((e) => e.inputs.length <= 8), `batches of ${embedCalls.map((e) => e.inputs.length)}`);
    assert.ok(embedCalls.length < texts.length, 'embed rows share engine calls');
    // One worker writes its batches one after another: the two pipelines never find a row locked by each other.
    const prompts = calls.filter((e) => e.call === 'generate').map((e) => e.inputs[0]);
    assert.deepEqual(prompts.sort(), Array.from({ length: 51 }, (_, i) => `Summarize: title ${i + 1}`).sort(), 'one generate call per row');
    assert.deepEqual(worker.stats.pipelineRows, { written: 102, stale: 0, busy: 0, failed: 0, lost: 0, retried: 0, released: 0, refused: 0 });
  } finally {
    await worker.stop();
    await db.drop();
  }
});

test('tiny real model: every row holds exactly the vector the engine gives its text, as text (double precision[]) and as binary float32 (real[])', async () => {
  const db = await createTestDatabase();
  const texts = Array.from({ length: 40 }, (_, i) => `row ${i}: ${'pipelines keep columns up to date '.repeat(1 + (i % 3))}`);
  await createDocuments(db.pool, texts, ', emb32 real[]');
  const engine = await tinyEngine();
  const worker = await startTestWorker(db.url, { pipelineBatchSize: 16 }, { engine });
  try {
    await createPipeline(db.pool, { name: 'tiny_embeddings' });
    await createPipeline(db.pool, { name: 'tiny_float32', destination: 'emb32' });
    await waitFor('every row embedded', async () => {
      const [s, f] = [await status(db.pool, 'tiny_embeddings'), await status(db.pool, 'tiny_float32')];
      return s.pending + s.processing + f.pending + f.processing === 0 && s.done === texts.length && f.done === texts.length;
    });
    const embeddings = await column(db.pool, 'embedding');
    const float32 = new Map((await db.pool.query(`SELECT id, emb32 FROM documents`)).rows.map((r) => [r.id as number, r.emb32 as number[]]));
    for (const [i, text] of texts.entries()) {
      const [v] = await engine.embed([text]);
      // The column holds the result text the worker wrote, read back as double precision[].
      assert.deepEqual(embeddings.get(i + 1), JSON.parse(writeResult('embed', v)), `row ${i + 1}`);
      // real[]: sent as binary float32, each value the float32 the text form would give
      assert.deepEqual(float32.get(i + 1)!.map(Math.fround), v.map(Math.fround), `row ${i + 1}, real[]`);
    }
  } finally {
    await worker.stop();
    await engine.dispose();
    await db.drop();
  }
});
