import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { enqueue, gen, row, startTestWorker, waitFor } from './fixtures/queue.ts';

test('a job goes pending → processing → completed with its result, worker and attempt', async () => {
  const db = await createTestDatabase();
  const worker = await startTestWorker(db.url);
  try {
    const [id] = await enqueue(db.pool, [gen('sleep:400')]);
    assert.match((await row(db.pool, id)).status, /^(pending|processing)$/);
    const processing = await waitFor('processing', async () => {
      const r = await row(db.pool, id);
      return r.status === 'processing' ? r : null;
    });
    assert.equal(processing.worker_id, worker.workerId);
    assert.ok(processing.started_at instanceof Date);
    assert.equal(processing.attempt, 1);
    const done = await waitFor('completed', async () => {
      const r = await row(db.pool, id);
      return r.status === 'completed' ? r : null;
    });
    assert.equal(done.result, 'echo:sleep:400');
    assert.equal(done.error, null);
    assert.ok(done.completed_at >= done.started_at);
    assert.equal(done.retry_count, 0);
  } finally {
    await worker.stop();
    await db.drop();
  }
});

test('a job that always throws ends failed after its retries; each function writes its result format', async () => {
  const db = await createTestDatabase();
  const worker = await startTestWorker(db.url, { concurrency: 4 });
  try {
    const ids = await enqueue(db.pool, [
      gen('throw:engine exploded', { max_retries: 0 }),
      { function_name: 'generate_json', parameters: { prompt: 'j', schema: { type: 'object' }, max_tokens: 10, seed: 1 } },
      { function_name: 'generate_regex', parameters: { prompt: 'r', pattern: '\\d+', max_tokens: 10, seed: 1 } },
      { function_name: 'generate_choice', parameters: { prompt: 'ab', choices: ['x', 'y', 'z'], max_tokens: 10, seed: 1 } },
      { function_name: 'embed', parameters: { text_input: 'hello' } },
      { function_name: 'rerank', parameters: { query: 'red fox', documents: ['blue sky', 'the red fox', 'red'], task: 't', seed: 42 } },
      gen('bad-input:unsupported pattern', { max_retries: 5 }),
    ]);
    const rows = await waitFor('all terminal', async () => {
      const r = await db.pool.query(`SELECT * FROM steadytext_queue WHERE status IN ('completed','failed')`);
      return r.rows.length === ids.length ? new Map(r.rows.map((x) => [x.request_id, x])) : null;
    });
    const [thrown, json, regex, choice, embed, rerank, badInput] = ids.map((id) => rows.get(id)!);
    assert.equal(thrown.status, 'failed');
    assert.equal(thrown.error, 'engine exploded');
    assert.ok(thrown.failed_at instanceof Date);
    assert.equal(json.result, '{"echo":"j"}');
    assert.equal(regex.result, 'regex:\\d+:r');
    assert.equal(choice.result, 'z');
    assert.match(embed.result, /^\[-?\d(\.\d+)?(,-?\d(\.\d+)?(e-?\d+)?){3}\]$/);
    assert.deepEqual(
      JSON.parse(rerank.result).map((d: { index: number }) => d.index),
      [1, 2, 0],
    );
    // Bad input is not retried even with retries left.
    assert.equal(badInput.status, 'failed');
    assert.equal(badInput.retry_count, 0);
    assert.equal(badInput.error, 'unsupported pattern');
    const w = await db.pool.query(`SELECT jobs_completed, jobs_failed, status FROM steadytext_workers`);
    assert.equal(w.rows[0].status, 'running');
  } finally {
    await worker.stop();
    await db.drop();
  }
  const w = worker.stats;
  assert.equal(w.jobsCompleted, 5);
  assert.equal(w.jobsFailed, 2);
});
