import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { isTransientError, withRetries } from '../../src/postgres/withRetries.ts';
import { enqueue, gen, row, startTestWorker, waitFor } from './fixtures/queue.ts';

test('withRetries retries transient connection errors only, and gives up after its attempts', async () => {
  assert.ok(isTransientError({ code: '57P01' }));
  assert.ok(isTransientError({ code: '08006' }));
  assert.ok(isTransientError({ code: 'ECONNREFUSED' }));
  assert.ok(isTransientError(new Error('Connection terminated unexpectedly')));
  assert.ok(!isTransientError({ code: '23505' }));
  assert.ok(!isTransientError({ code: '42P01' }));
  let calls = 0;
  assert.equal(await withRetries(async () => (++calls < 3 ? Promise.reject({ code: '57P01' }) : 'ok'), { baseDelayMs: 1 }), 'ok');
  assert.equal(calls, 3);
  calls = 0;
  await assert.rejects(withRetries(async () => { calls++; throw Object.assign(new Error('dup'), { code: '23505' }); }), /dup/);
  assert.equal(calls, 1);
  calls = 0;
  await assert.rejects(withRetries(async () => { calls++; throw Object.assign(new Error('down'), { code: '57P03' }); }, { attempts: 4, baseDelayMs: 1 }), /down/);
  assert.equal(calls, 4);
});

test('the worker keeps working after every one of its connections is terminated', async () => {
  const db = await createTestDatabase();
  const worker = await startTestWorker(db.url, { concurrency: 2, pollInterval: '0.3' });
  try {
    const [first] = await enqueue(db.pool, [gen('before')]);
    await waitFor('first completed', async () => (await row(db.pool, first)).status === 'completed');
    const killed = await db.pool.query(
      `SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND application_name LIKE 'steadytext-worker%') t`,
    );
    assert.ok(killed.rows[0].n >= 2, `terminated ${killed.rows[0].n} connections (pool + LISTEN)`);
    const ids = await enqueue(db.pool, [gen('after 1'), gen('after 2'), gen('after 3')]);
    await waitFor('jobs after the loss completed', async () => {
      const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE request_id = ANY($1) AND status = 'completed'`, [ids]);
      return r.rows[0].n === 3;
    });
    // Heartbeats continue, so the worker is not taken for dead.
    const w = await db.pool.query(`SELECT status, now() - last_heartbeat < interval '1 second' AS fresh FROM steadytext_workers`);
    assert.deepEqual(w.rows, [{ status: 'running', fresh: true }]);
  } finally {
    await worker.stop();
    await db.drop();
  }
});
