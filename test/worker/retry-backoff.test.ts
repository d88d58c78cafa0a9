import { test } from 'node:test';
import assert from 'node:assert/strict';
import { events } from '../helpers/scriptedEngine.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { enqueue, gen, row, startTestWorker, waitFor } from './fixtures/queue.ts';

test('a failing job is retried with exponential backoff, then ends failed with retry_count, failed_at and error', async () => {
  const db = await createTestDatabase();
  const worker = await startTestWorker(db.url, { retryBackoff: '0.3', maxRetries: 1 });
  try {
    const [id] = await enqueue(db.pool, [gen('throw:boom retry', { max_retries: 2 })]);
    // Between attempts: back to pending, error kept, run_at in the future.
    const waiting = await waitFor('first retry scheduled', async () => {
      const r = await row(db.pool, id);
      return r.status === 'pending' && r.retry_count === 1 ? r : null;
    });
    assert.equal(waiting.error, 'boom retry');
    assert.ok(waiting.run_at > waiting.started_at);
    const failed = await waitFor('failed', async () => {
      const r = await row(db.pool, id);
      return r.status === 'failed' ? r : null;
    });
    assert.equal(failed.retry_count, 2);
    assert.equal(failed.attempt, 3);
    assert.equal(failed.max_retries, 2);
    assert.equal(failed.error, 'boom retry');
    assert.ok(failed.failed_at instanceof Date);
    assert.ok(failed.completed_at instanceof Date);
    const starts = events.filter((e) => e.inputs[0] === 'throw:boom retry').map((e) => e.at!);
    assert.equal(starts.length, 3);
    const gaps = [starts[1] - starts[0], starts[2] - starts[1]];
    console.log(`gaps between attempts: ${gaps.join(' ms, ')} ms (backoff 300 ms, then 600 ms)`);
    assert.ok(gaps[0] >= 280 && gaps[0] < 2000, `first gap ${gaps[0]}`);
    assert.ok(gaps[1] >= 580 && gaps[1] < 3000, `second gap ${gaps[1]}`);

    // max_retries NULL: the worker's setting applies and is recorded.
    const [id2] = await enqueue(db.pool, [gen('throw:default limit')]);
    const f2 = await waitFor('failed', async () => {
      const r = await row(db.pool, id2);
      return r.status === 'failed' ? r : null;
    });
    assert.equal(f2.retry_count, 1);
    assert.equal(f2.max_retries, 1);
  } finally {
    await worker.stop();
    await db.drop();
  }
});
