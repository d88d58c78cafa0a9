import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { spawnWorker, waitFor, type WorkerProcess } from './fixtures/queue.ts';

test('two worker processes racing over 1,000 jobs complete each exactly once', async () => {
  const db = await createTestDatabase();
  const listener = await db.connect();
  const notified = new Map<string, number>();
  listener.on('notification', (n) => {
    const id = JSON.parse(n.payload!).request_id as string;
    notified.set(id, (notified.get(id) ?? 0) + 1);
  });
  await listener.query('LISTEN steadytext_completed');
  const procs: WorkerProcess[] = [];
  try {
    for (const name of ['racer-a', 'racer-b']) {
      procs.push(spawnWorker(db.url, ['--worker-id', name, '--concurrency', '4', '--poll-interval', '0.5']));
    }
    await Promise.all(procs.map((p) => p.started));
    const t0 = Date.now();
    await db.pool.query(
      `SELECT steadytext_generate_async('sleep:2 #' || i, use_cache := false) FROM generate_series(1, 1000) AS i`,
    );
    await waitFor(
      '1000 completed',
      async () => {
        const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE status = 'completed'`);
        return r.rows[0].n === 1000;
      },
      60_000,
      100,
    );
    const seconds = (Date.now() - t0) / 1000;
    console.log(`1000 jobs, 2 worker processes x concurrency 4: ${seconds.toFixed(1)} s`);
    const r = await db.pool.query(
      `SELECT worker_id, count(*)::int AS n, max(attempt) AS max_attempt, min(attempt) AS min_attempt,
              sum(retry_count)::int AS retries
       FROM steadytext_queue GROUP BY worker_id ORDER BY worker_id`,
    );
    assert.deepEqual(r.rows.map((x) => x.worker_id), ['racer-a', 'racer-b'], 'both workers took jobs');
    assert.equal(r.rows.reduce((s, x) => s + x.n, 0), 1000);
    for (const x of r.rows) {
      assert.equal(x.min_attempt, 1);
      assert.equal(x.max_attempt, 1, 'no job was claimed twice');
      assert.equal(x.retries, 0);
    }
    await waitFor('1000 notifications', async () => notified.size === 1000, 5000);
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(notified.size, 1000);
    assert.deepEqual([...new Set(notified.values())], [1], 'no duplicate completion notification');

    // Clean stop: both exit 0 and their rows say how many each completed.
    for (const p of procs) p.kill('SIGTERM');
    assert.deepEqual(await Promise.all(procs.map((p) => p.exited)), [0, 0]);
    const w = await db.pool.query(`SELECT worker_id, status, jobs_completed::int FROM steadytext_workers ORDER BY worker_id`);
    assert.deepEqual(
      w.rows.map((x) => [x.worker_id, x.status, x.jobs_completed]),
      r.rows.map((x) => [x.worker_id, 'stopped', x.n]),
    );
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    await db.drop();
  }
});
