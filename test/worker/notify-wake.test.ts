import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { row, startTestWorker, waitFor } from './fixtures/queue.ts';

// Behaviour checks that NOTIFY steadytext_new_job wakes an idle worker (not a
// performance claim): with a 10 s poll interval, only the NOTIFY can explain
// a start within 2 s.
test('a job enqueued while the worker idles (poll interval 10 s) starts well before 10 s', async () => {
  const db = await createTestDatabase();
  const worker = await startTestWorker(db.url, { pollInterval: '10' });
  try {
    await new Promise((r) => setTimeout(r, 500)); // the worker's first (empty) claim is over: it is waiting
    const r = await db.pool.query(`SELECT steadytext_generate_async('wake up', use_cache := false) AS id`);
    const done = await waitFor('completed', async () => {
      const x = await row(db.pool, r.rows[0].id);
      return x.status === 'completed' ? x : null;
    }, 10_000);
    const latency = (done.started_at - done.created_at) / 1000;
    console.log(`enqueue → start: ${(latency * 1000).toFixed(0)} ms (poll interval 10 s)`);
    assert.ok(latency < 2, `started after ${latency} s`);
  } finally {
    await worker.stop();
    await db.drop();
  }
});

test('the LISTEN connection comes back after it is killed, and wakes the worker again', async () => {
  const db = await createTestDatabase();
  const worker = await startTestWorker(db.url, { pollInterval: '10' });
  try {
    const killed = await db.pool.query(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
       WHERE datname = current_database() AND application_name = 'steadytext-worker-listen'`,
    );
    assert.deepEqual(killed.rows, [{ ok: true }]);
    await waitFor('listener back', async () => {
      const r = await db.pool.query(
        `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'steadytext-worker-listen'`,
      );
      return r.rows.length === 1;
    });
    await new Promise((r) => setTimeout(r, 300)); // LISTEN issued, the wake-on-reconnect claim done
    const r = await db.pool.query(`SELECT steadytext_generate_async('after reconnect', use_cache := false) AS id`);
    const done = await waitFor('completed', async () => {
      const x = await row(db.pool, r.rows[0].id);
      return x.status === 'completed' ? x : null;
    });
    assert.ok((done.started_at - done.created_at) / 1000 < 2);
  } finally {
    await worker.stop();
    await db.drop();
  }
});
