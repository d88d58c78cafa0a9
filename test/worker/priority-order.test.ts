import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { events } from '../helpers/scriptedEngine.ts';
import { startTestWorker, waitFor } from './fixtures/queue.ts';

test('with concurrency 1, higher priority runs first, then older first', async () => {
  const db = await createTestDatabase();
  // Enqueued (through the SQL API) before any worker runs, in this order.
  const priorities = [0, 5, 1, 10, 0, 5];
  const ids: string[] = [];
  for (const [i, p] of priorities.entries()) {
    const r = await db.pool.query(`SELECT steadytext_generate_async($1, use_cache := false, priority := $2) AS id`, [
      `job ${i}`,
      p,
    ]);
    ids.push(r.rows[0].id);
  }
  // A short heartbeat timeout, which a loaded machine can miss: a worker's
  // own reclaim pass never takes back the jobs it claimed ahead, so they
  // still run in claim order (late-heartbeat.test.ts makes the beat late).
  const before = events.length;
  const worker = await startTestWorker(db.url, { concurrency: 1, heartbeatTimeout: '1' });
  try {
    await waitFor('all completed', async () => {
      const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE status = 'completed'`);
      return r.rows[0].n === ids.length;
    });
    // The run order is the order of the engine's calls (one slot: one at a
    // time), not started_at: jobs this short are stamped started when claimed
    // (ClaimPolicy.stampAhead), several in one claim with the same time.
    const order = events.slice(before).map((e) => Number(/^job (\d+)$/.exec(e.inputs[0])![1]));
    assert.deepEqual(order, [3, 1, 5, 2, 0, 4]);
  } finally {
    await worker.stop();
    await db.drop();
  }
});
