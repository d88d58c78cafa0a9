import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { row, startTestWorker, waitFor } from './fixtures/queue.ts';

test('a claim whose reply was lost (the job is processing under a live worker that is not running it) goes back to pending and completes', async () => {
  const db = await createTestDatabase();
  const worker = await startTestWorker(db.url, { workerId: 'forgetful', heartbeatTimeout: '1' });
  try {
    // What a claim committed just before the connection died leaves behind:
    // the row says 'processing' under this worker, which never saw the reply.
    const r = await db.pool.query(
      `INSERT INTO steadytext_queue (function_name, parameters, status, worker_id, attempt, started_at)
       VALUES ('generate', '{"prompt": "orphan", "max_tokens": 512, "seed": 42, "use_cache": false}', 'processing', 'forgetful', 1, now())
       RETURNING request_id`,
    );
    const id: string = r.rows[0].request_id;
    const t0 = Date.now();
    const done = await waitFor('the orphaned claim to complete', async () => {
      const r = await row(db.pool, id);
      return r.status === 'completed' ? r : null;
    }, 10_000);
    assert.ok(Date.now() - t0 < 5000, `released within the heartbeat timeout (${Date.now() - t0} ms)`);
    assert.equal(done.result, 'echo:orphan');
    assert.equal(done.attempt, 2);
    assert.equal(done.retry_count, 0, 'not counted as a retry: the job never ran');
    assert.equal(done.worker_id, 'forgetful');
  } finally {
    await worker.stop();
    await db.drop();
  }
});
