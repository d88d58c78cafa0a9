// A request answered through the request-response hand-off has two rows:
// the caller's own and the committed copy a worker ran (handoff_of = the
// original). steadytext_queue_stats(), and so the dashboard and `steadytext
// status`, count it once: the copy while the original is invisible (the
// caller's transaction is open, or rolled back), the original once committed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { queueStats } from '../../src/dashboard/queries.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { waitFor } from '../worker/fixtures/queue.ts';
import { claim, complete, enableHandoff } from './helpers.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
  await enableHandoff(db.pool, db.url);
});
after(async () => {
  await db.drop();
});

/** steadytext_queue_stats() as the dashboard reads it: count per status of generate. */
async function generateCounts(): Promise<Record<string, number>> {
  const rows = await queueStats(db.pool);
  return Object.fromEntries(rows.filter((r) => r.function_name === 'generate').map((r) => [r.status, r.count]));
}

/** Enqueue and wait in one transaction; a stand-in worker completes the hand-off copy. Returns the open caller. */
async function answeredInOneTransaction(prompt: string) {
  const caller = await db.connect();
  await caller.query('BEGIN');
  const waiting = caller.query(
    `SELECT steadytext_get_async_result(steadytext_generate_async($1, use_cache := false), 10) AS r`, [prompt]);
  const copy = await waitFor('the hand-off copy', async () =>
    (await db.pool.query(`SELECT request_id FROM steadytext_queue WHERE handoff_of IS NOT NULL AND status = 'pending'`)).rows[0]?.request_id as string | undefined);
  assert.deepEqual(await generateCounts(), { pending: 1 }, 'the copy stands for the request while the caller waits');
  await claim(db.pool, copy, 'w-stats');
  await complete(db.pool, copy, `answer: ${prompt}`);
  assert.equal((await waiting).rows[0].r, `answer: ${prompt}`);
  return caller;
}

test('committed: the request counts once (its original), not twice', async () => {
  await db.pool.query(`DELETE FROM steadytext_queue`);
  const caller = await answeredInOneTransaction('committed');
  assert.deepEqual(await generateCounts(), { completed: 1 }, 'caller still open: the copy, once');
  await caller.query('COMMIT');
  const rows = (await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE status = 'completed'`)).rows[0].n;
  assert.equal(rows, 2, 'two rows: the original and its copy');
  assert.deepEqual(await generateCounts(), { completed: 1 }, 'one request');
});

test('rolled back: the copy a worker ran still counts, once', async () => {
  await db.pool.query(`DELETE FROM steadytext_queue`);
  const caller = await answeredInOneTransaction('rolled back');
  await caller.query('ROLLBACK');
  assert.deepEqual(await generateCounts(), { completed: 1 });
});

test('plain requests are all counted, hand-off or not', async () => {
  await db.pool.query(`DELETE FROM steadytext_queue`);
  const caller = await answeredInOneTransaction('beside others');
  await caller.query('COMMIT');
  await db.pool.query(`SELECT steadytext_generate_async('plain ' || i, use_cache := false) FROM generate_series(1, 3) AS i`);
  assert.deepEqual(await generateCounts(), { completed: 1, pending: 3 });
});
