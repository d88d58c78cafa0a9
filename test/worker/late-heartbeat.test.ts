// A live worker whose heartbeat is late (a loaded machine, a slow
// connection) keeps what it holds: its own reclaim pass never takes back its
// own jobs, so the jobs it claimed ahead still run in claim order, under
// their first claim, with no retry counted.
import { once } from 'node:events';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ReclaimedJob } from '../../src/db/jobs/reclaimStale.ts';
import { Worker } from '../../src/worker/index.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { enqueue, gen, testSettings, waitFor } from './fixtures/queue.ts';

test('priority order holds with a 1 s heartbeat timeout when the worker\'s heartbeats are late', async () => {
  const db = await createTestDatabase();
  const dir = mkdtempSync(path.join(tmpdir(), 'late-heartbeat-'));
  const gate = path.join(dir, 'gate');
  // The first job (highest priority) holds the one slot until the test opens
  // the gate; the others wait in the worker's buffer meanwhile.
  const jobs = [
    gen(`wait-for-file:${gate}`, { priority: 10 }),
    gen('a', { priority: 5 }),
    gen('b', { priority: 1 }),
    gen('c', { priority: 7 }),
    gen('d', { priority: 0 }),
  ];
  const ids = await enqueue(db.pool, jobs);
  const worker = new Worker(testSettings(db.url, { workerId: 'late', concurrency: 1, prefetch: '10', heartbeatTimeout: '1' }));
  // Every reclaim pass the worker runs, with the jobs it took back.
  const passes: ReclaimedJob[][] = [];
  worker.events.on('reclaimed', (jobs) => passes.push(jobs));
  await worker.start();
  // Its heartbeats never arrive: after registration its row only ages, as
  // when every heartbeat is slower than the timeout.
  await worker.services.heartbeat.stop();
  try {
    await waitFor('the worker holds all five', async () => {
      const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE status = 'processing' AND worker_id = 'late'`);
      return r.rows[0].n === ids.length;
    });
    await waitFor(
      'the heartbeat past its 1 s timeout',
      async () => {
        const r = await db.pool.query(`SELECT now() - last_heartbeat > interval '1 second' AS late FROM steadytext_workers WHERE worker_id = 'late'`);
        return r.rows[0].late;
      },
      30_000,
    );
    // Its own reclaim passes, each started now that the heartbeat is late:
    // none takes anything back.
    for (let i = 0; i < 3; i++) assert.deepEqual(await worker.services.reclaim.runNow(), [], `own pass ${i + 1}`);
    // And the timer's own next pass (every 0.25 s) neither.
    const [next] = (await once(worker.events, 'reclaimed')) as [ReclaimedJob[]];
    assert.deepEqual(next, []);
    assert.ok(passes.length >= 4, `${passes.length} passes`);
    assert.deepEqual(passes.flat(), [], 'no pass took a job back');
    const held = await db.pool.query(
      `SELECT count(*)::int AS n FROM steadytext_queue WHERE status = 'processing' AND worker_id = 'late' AND attempt = 1 AND retry_count = 0`,
    );
    assert.equal(held.rows[0].n, ids.length, 'still held under their first claim');
    const w = await db.pool.query(`SELECT status FROM steadytext_workers WHERE worker_id = 'late'`);
    assert.equal(w.rows[0].status, 'running', 'a worker never marks itself dead');
    writeFileSync(gate, '');
    const rows = await waitFor('all completed', async () => {
      const r = await db.pool.query(
        `SELECT request_id, attempt, retry_count FROM steadytext_queue WHERE status = 'completed' ORDER BY started_at`,
      );
      return r.rows.length === ids.length ? r.rows : null;
    });
    assert.deepEqual(rows.map((r) => ids.indexOf(r.request_id)), [0, 3, 1, 2, 4], 'priority order');
    assert.ok(rows.every((r) => r.attempt === 1 && r.retry_count === 0), JSON.stringify(rows));
  } finally {
    writeFileSync(gate, '');
    await worker.stop();
    rmSync(dir, { recursive: true, force: true });
    await db.drop();
  }
});

test('reclaimStale leaves the calling worker\'s own jobs and row alone; another worker\'s pass takes them', async () => {
  const db = await createTestDatabase();
  try {
    const { reclaimStale } = await import('../../src/db/jobs/reclaimStale.ts');
    await db.pool.query(
      `INSERT INTO steadytext_workers (worker_id, host, pid, last_heartbeat, heartbeat_timeout_seconds) VALUES ('slow', 'h', 1, now() - interval '1 hour', 1)`,
    );
    const [id] = await enqueue(db.pool, [gen('x')]);
    await db.pool.query(`UPDATE steadytext_queue SET status = 'processing', worker_id = 'slow', attempt = 1 WHERE request_id = $1`, [id]);
    assert.deepEqual(await reclaimStale(db.pool, 3, { self: 'slow' }), []);
    const w = await db.pool.query(`SELECT status FROM steadytext_workers WHERE worker_id = 'slow'`);
    assert.equal(w.rows[0].status, 'running');
    const taken = await reclaimStale(db.pool, 3, { self: 'other' });
    assert.deepEqual(taken.map((j) => [j.request_id, j.lost_worker, j.started]), [[id, 'slow', false]]);
    const after = await db.pool.query(`SELECT status FROM steadytext_workers WHERE worker_id = 'slow'`);
    assert.equal(after.rows[0].status, 'dead');
  } finally {
    await db.drop();
  }
});
