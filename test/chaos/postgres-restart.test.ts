// Chaos: the PostgreSQL server restarted (pg_ctl stop -m fast, and -m
// immediate: a crash and WAL recovery) while 2 worker processes run jobs. The
// workers reconnect on their own; every job ends with one completion record.
// The LISTEN client is cut off too: notifications sent while it is away are
// lost (LISTEN/NOTIFY delivers only to sessions connected at commit), so only
// completions outside its gap are required to have been seen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import {
  alive, CHAOS_JOBS, CompletionCounter, drain, enqueueJobs, killAll, report, sleepScript, startOwnServer, startWorkers,
  timeUntilAllComplete, verify, waitFor, type ChaosWorker,
} from './harness.ts';

for (const mode of (process.env.CHAOS_RESTART_MODES?.split(',') ?? ['fast', 'immediate']) as Array<'fast' | 'immediate'>) {
  test(`PostgreSQL restarted (-m ${mode}) under ${CHAOS_JOBS} jobs, 2 worker processes`, async () => {
    const server = await startOwnServer();
    const pool = new pg.Pool({ connectionString: server.url, max: 4 });
    pool.on('error', () => {}); // idle connections die with the server
    const counter = new CompletionCounter(server.url);
    let workers: ChaosWorker[] = [];
    try {
      await counter.start();
      workers = startWorkers(server.url, [`${mode}-a`, `${mode}-b`]);
      await Promise.all(workers.map((w) => w.started));
      await enqueueJobs(pool, CHAOS_JOBS, () => sleepScript(8, 8));
      await waitFor('a quarter done', async () => {
        const r = await pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE status = 'completed'`);
        return r.rows[0].n >= CHAOS_JOBS / 4;
      }, 60_000, 20);
      const { stoppedAt, upAt } = await server.restart(mode, 1000);
      const recovery = await timeUntilAllComplete(pool, workers.map((w) => w.name), new Date(upAt));
      report(
        `postgres restart -m ${mode}`,
        `recovery: ${recovery.toFixed(2)} s after the server was back (down ${((upAt - stoppedAt) / 1000).toFixed(2)} s)`,
      );
      await drain(pool, 60_000, workers);
      const out = await verify(pool, counter, CHAOS_JOBS);
      report(`postgres restart -m ${mode}`, JSON.stringify(out));
      assert.ok(counter.gaps.length >= 1, 'the listener was cut off and came back');
      for (const w of workers) assert.ok(alive(w), `${w.name} still running (reconnected on its own)`);
    } finally {
      await killAll(workers);
      await counter.close();
      await pool.end().catch(() => {});
      await server.stop();
    }
  });
}
