// Chaos: max_connections reached by other clients. On a server of its own
// with max_connections = 40, the test fills every free slot with idle
// clients, terminates the workers' connections (they cannot get new ones:
// "sorry, too many clients already"), holds the slots 5 s, then lets go. The
// workers get back on their own; nothing is lost or completed twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import {
  alive, CHAOS_JOBS, CompletionCounter, completedSince, drain, enqueueJobs, killAll, report, sleepScript, sleep, startOwnServer, startWorkers,
  timeUntilAllComplete, verify, waitFor, type ChaosWorker,
} from './harness.ts';

const HOLD_MS = 5000;

/** Opens connections until the server refuses one (53300); returns them. */
async function fillSlots(url: string, hogs: pg.Client[]): Promise<void> {
  for (;;) {
    const c = new pg.Client({ connectionString: url, application_name: 'chaos-hog' });
    c.on('error', () => {});
    try {
      await c.connect();
      hogs.push(c);
    } catch (err) {
      if ((err as { code?: string }).code === '53300') return;
      throw err;
    }
  }
}

test(`max_connections exhausted by other clients for ${HOLD_MS / 1000} s under ${CHAOS_JOBS} jobs, 2 worker processes`, async () => {
  const server = await startOwnServer({ maxConnections: 40 });
  const pool = new pg.Pool({ connectionString: server.url, max: 2 });
  pool.on('error', () => {});
  const counter = new CompletionCounter(server.url);
  const hogs: pg.Client[] = [];
  let workers: ChaosWorker[] = [];
  try {
    await counter.start();
    workers = startWorkers(server.url, ['pool-a', 'pool-b']);
    await Promise.all(workers.map((w) => w.started));
    await enqueueJobs(pool, CHAOS_JOBS, () => sleepScript(8, 14));
    await waitFor('a quarter done', async () => {
      const r = await pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE status = 'completed'`);
      return r.rows[0].n >= CHAOS_JOBS / 4;
    }, 60_000, 20);
    // Our own two pool connections stay open; every other free slot goes to a hog.
    await Promise.all([pool.query('SELECT 1'), pool.query('SELECT 1')]);
    await fillSlots(server.url, hogs);
    const admin = hogs[0];
    // Cut the workers off; each freed slot is taken by a hog before they reconnect (mostly: they race).
    for (let round = 0; round < 3; round++) {
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'steadytext-worker%'`);
      await fillSlots(server.url, hogs);
    }
    const cutAt = new Date();
    await sleep(HOLD_MS);
    const during = await completedSince(pool, cutAt);
    await Promise.all(hogs.splice(0).map((c) => c.end().catch(() => {})));
    const releasedAt = new Date();
    const recovery = await timeUntilAllComplete(pool, workers.map((w) => w.name), releasedAt);
    report('pool exhaustion', `recovery: ${recovery.toFixed(2)} s after the other clients let go (completed while exhausted: ${JSON.stringify(during)})`);
    await drain(pool, 120_000, workers);
    const out = await verify(pool, counter, CHAOS_JOBS);
    report('pool exhaustion', JSON.stringify(out));
    for (const w of workers) {
      assert.ok(alive(w), `${w.name} still running`);
      assert.match(w.stdout() + w.stderr(), /too many clients|Connection terminated|terminating connection/, `${w.name} felt the outage`);
    }
  } finally {
    await Promise.all(hogs.map((c) => c.end().catch(() => {})));
    await killAll(workers);
    await counter.close();
    await pool.end().catch(() => {});
    await server.stop();
  }
});
