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
