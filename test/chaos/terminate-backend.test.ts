// Chaos: every backend of the worker processes (pool and LISTEN connections)
// killed with pg_terminate_backend, three times, while they run jobs. The
// workers reconnect on their own and every job ends with one completion.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import {
  alive, CHAOS_JOBS, CompletionCounter, drain, enqueueJobs, killAll, report, sleepScript, sleep, startWorkers,
  timeUntilAllComplete, verify, waitFor, type ChaosWorker,
} from './harness.ts';

test(`pg_terminate_backend on the workers' connections, 3 times, under ${CHAOS_JOBS} jobs, 2 worker processes`, async () => {
  const db = await createTestDatabase();
  const counter = new CompletionCounter(db.url);
  let workers: ChaosWorker[] = [];
  try {
    await counter.start();
    workers = startWorkers(db.url, ['term-a', 'term-b']);
    await Promise.all(workers.map((w) => w.started));
    await enqueueJobs(db.pool, CHAOS_JOBS, () => sleepScript(8, 9));
    await waitFor('a quarter done', async () => {
      const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE status = 'completed'`);
      return r.rows[0].n >= CHAOS_JOBS / 4;
    }, 60_000, 20);
    const recoveries: number[] = [];
    for (let round = 0; round < 3; round++) {
      const r = await db.pool.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND application_name LIKE 'steadytext-worker%'`,
      );
      const at = new Date();
      assert.ok(r.rows[0].n >= 2, `terminated ${r.rows[0].n} backends`);
      recoveries.push(await timeUntilAllComplete(db.pool, workers.map((w) => w.name), at));
      await sleep(1000);
    }
    report('pg_terminate_backend', `recovery: ${recoveries.map((x) => x.toFixed(2)).join(' s, ')} s (3 rounds, every worker completing a job again)`);
    await drain(db.pool, 120_000, workers);
    const out = await verify(db.pool, counter, CHAOS_JOBS);
    report('pg_terminate_backend', JSON.stringify(out));
    for (const w of workers) assert.ok(alive(w), `${w.name} still running`);
  } finally {
    await killAll(workers);
    await counter.close();
    await db.drop();
  }
});
