import { test } from 'node:test';
import assert from 'node:assert/strict';
import { events } from '../helpers/scriptedEngine.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { completeJob } from '../../src/db/jobs/completeJobs.ts';
import { enqueue, gen, row, startTestWorker, waitFor } from './fixtures/queue.ts';

async function cancel(db: TestDatabase, id: string): Promise<void> {
  const r = await db.pool.query(`SELECT steadytext_cancel_async($1) AS ok`, [id]);
  assert.equal(r.rows[0].ok, true);
}

test('cancelling a running job aborts the engine call; a late result is discarded', async () => {
  const db = await createTestDatabase();
  const worker = await startTestWorker(db.url, { concurrency: 2 });
  try {
    const [hang, deaf] = await enqueue(db.pool, [gen('hang'), gen('deaf:700')]);
    await waitFor('both running', async () =>
      (await row(db.pool, hang)).status === 'processing' && (await row(db.pool, deaf)).status === 'processing');
    const t0 = Date.now();
    await cancel(db, hang);
    await cancel(db, deaf);
    const ev = await waitFor('engine saw the abort', async () =>
      events.find((e) => e.inputs[0] === 'hang' && e.abortedAt !== undefined));
    assert.ok(ev.abortedAt! - t0 < 1000, `abort reached the engine after ${ev.abortedAt! - t0} ms`);
    // 'deaf' ignores its signal and answers at ~700 ms: the answer must not land.
    await waitFor('deaf answered', async () => events.find((e) => e.inputs[0] === 'deaf:700' && e.outcome === 'ok'));
    await new Promise((r) => setTimeout(r, 300));
    for (const id of [hang, deaf]) {
      const r = await row(db.pool, id);
      assert.equal(r.status, 'cancelled');
      assert.equal(r.result, null);
    }
    assert.equal(worker.stats.jobsCompleted, 0);
    // The slots are free again: the next job runs.
    const [next] = await enqueue(db.pool, [gen('after cancel')]);
    await waitFor('next job completed', async () => (await row(db.pool, next)).status === 'completed');
  } finally {
    await worker.stop();
    await db.drop();
  }
});

test('a completion only counts for the claim that holds the row (worker_id and attempt)', async () => {
  const db = await createTestDatabase();
  try {
    const [id] = await enqueue(db.pool, [gen('x')]);
    await db.pool.query(
      `UPDATE steadytext_queue SET status = 'processing', worker_id = 'w2', attempt = 2 WHERE request_id = $1`,
      [id],
    );
    assert.equal(await completeJob(db.pool, id, 'w1', 1, 'stale', null), false, 'an earlier claim by another worker');
    assert.equal(await completeJob(db.pool, id, 'w2', 1, 'stale', null), false, 'an earlier claim by the same worker');
    assert.equal((await row(db.pool, id)).status, 'processing');
    assert.equal(await completeJob(db.pool, id, 'w2', 2, 'fresh', null), true);
    assert.equal(await completeJob(db.pool, id, 'w2', 2, 'again', null), false, 'only once');
    assert.equal((await row(db.pool, id)).result, 'fresh');
  } finally {
    await db.drop();
  }
});
