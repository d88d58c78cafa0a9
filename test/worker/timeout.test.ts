import { test } from 'node:test';
import assert from 'node:assert/strict';
import { events } from '../helpers/scriptedEngine.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { enqueue, gen, row, startTestWorker, waitFor } from './fixtures/queue.ts';

test('a job past its timeout is aborted and fails "timed out after N s" through the retry logic', async () => {
  const db = await createTestDatabase();
  const worker = await startTestWorker(db.url, { concurrency: 2, timeout: '0.5', retryBackoff: '0.05' });
  try {
    const [own, dflt] = await enqueue(db.pool, [
      gen('hang', { timeout_seconds: 1, max_retries: 1 }), // the row's own limit
      gen('hang', { max_retries: 0 }), // the worker's --timeout
    ]);
    const a = await waitFor('own-timeout job failed', async () => {
      const r = await row(db.pool, own);
      return r.status === 'failed' ? r : null;
    });
    assert.equal(a.error, 'timed out after 1 s');
    assert.equal(a.retry_count, 1, 'a timeout is retried like any failure');
    const elapsed = (a.completed_at - a.created_at) / 1000;
    assert.ok(elapsed >= 2 && elapsed < 5, `two 1 s attempts took ${elapsed} s`);
    const b = await row(db.pool, dflt);
    assert.equal(b.status, 'failed');
    assert.equal(b.error, 'timed out after 0.5 s');
    // The engine call saw its signal abort each time.
    const hangs = events.filter((e) => e.inputs[0] === 'hang');
    assert.equal(hangs.length, 3);
    assert.ok(hangs.every((e) => e.outcome === 'aborted' && e.abortedAt !== undefined));
  } finally {
    await worker.stop();
    await db.drop();
  }
});

test('a job that times out while the engine is still producing its output fails at once; a stalled or mostly waiting one is retried', async () => {
  const db = await createTestDatabase();
  const worker = await startTestWorker(db.url, { concurrency: 3, retryBackoff: '0.05' });
  try {
    const [steady, stalled, late] = await enqueue(db.pool, [
      gen('progress:0-', { timeout_seconds: 1, max_retries: 2 }), // output until the limit: its own work is too long
      gen('progress:0-200', { timeout_seconds: 1, max_retries: 1 }), // output, then silence: the engine stalled
      gen('progress:700-', { timeout_seconds: 1, max_retries: 1 }), // silence for most of its time, then output
    ]);
    const ended = (id: string) =>
      waitFor(`job ${id} failed`, async () => {
        const r = await row(db.pool, id);
        return r.status === 'failed' ? r : null;
      });
    const s = await ended(steady);
    assert.equal(s.retry_count, 0, 'not retried');
    assert.equal(s.attempt, 1);
    assert.equal(s.error, 'timed out after 1 s while still producing its output: the job needs more than its time limit (not retried)');
    for (const r of [await ended(stalled), await ended(late)]) {
      assert.equal(r.error, 'timed out after 1 s');
      assert.equal(r.retry_count, 1, 'retried like any machine fault');
    }
  } finally {
    await worker.stop();
    await db.drop();
  }
});
