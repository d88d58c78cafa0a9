// Chaos: worker processes killed with SIGKILL mid-job, once and every few
// seconds. Their jobs come back through missed heartbeats (2 s here), run on
// another worker (or the restarted one), and each still ends with exactly one
// completion record and one steadytext_completed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import {
  alive, CHAOS_JOBS, CompletionCounter, completedSince, drain, enqueueJobs, killAll, report, sleep, sleepScript, startWorkers,
  verify, waitFor, type ChaosWorker,
} from './harness.ts';
import type pg from 'pg';

/** (request_id, attempt) of the jobs a worker holds right now. */
async function heldBy(db: pg.Pool, worker: string): Promise<Map<string, number>> {
  const r = await db.query<{ request_id: string; attempt: number }>(
    `SELECT request_id, attempt FROM steadytext_queue WHERE status = 'processing' AND worker_id = $1`,
    [worker],
  );
  return new Map(r.rows.map((x) => [x.request_id, x.attempt]));
}

/** Seconds from `since` until none of `held` is still 'processing' under that claim. */
async function timeUntilReleased(db: pg.Pool, held: Map<string, number>, since: number): Promise<number> {
  const ids = [...held.keys()];
  await waitFor(
    'the killed worker\'s jobs to be reclaimed',
    async () => {
      const r = await db.query<{ request_id: string; attempt: number; status: string }>(
        `SELECT request_id, attempt, status FROM steadytext_queue WHERE request_id = ANY($1::uuid[])`,
        [ids],
      );
      return r.rows.every((x) => x.status !== 'processing' || x.attempt !== held.get(x.request_id));
    },
    30_000,
    20,
  );
  return (Date.now() - since) / 1000;
}

const lostWorker = (j: { error: string | null }) => /lost \(no heartbeat\)/.test(j.error ?? '');

test(`SIGKILL once: ${CHAOS_JOBS} jobs, 3 worker processes, one killed mid-job`, async () => {
  const db = await createTestDatabase();
  const counter = new CompletionCounter(db.url);
  let workers: ChaosWorker[] = [];
  try {
    await counter.start();
    workers = startWorkers(db.url, ['kill-a', 'kill-b', 'kill-c']);
    await Promise.all(workers.map((w) => w.started));
    await enqueueJobs(db.pool, CHAOS_JOBS, () => sleepScript(12, 5));
    const [victim, ...survivors] = workers;
    await waitFor('a quarter done, the victim holding jobs', async () => {
      const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE status = 'completed'`);
      return r.rows[0].n >= CHAOS_JOBS / 4 && (await heldBy(db.pool, victim.name)).size > 0;
    }, 60_000, 10);
    const held = await heldBy(db.pool, victim.name);
    victim.kill('SIGKILL');
    const killedAt = Date.now();
    assert.equal(await victim.exited, 'SIGKILL');
    const recovery = await timeUntilReleased(db.pool, held, killedAt);
    report('sigkill once', `recovery: ${recovery.toFixed(2)} s (${held.size} job(s) held by the killed worker, heartbeat timeout 2 s)`);
    await drain(db.pool, 120_000);
    const out = await verify(db.pool, counter, CHAOS_JOBS, { mayFail: lostWorker });
    report('sigkill once', JSON.stringify(out));
    assert.equal(out.failed, 0);
    // Every job the victim held (running, or claimed ahead into its buffer)
    // was taken back and completed under a later claim, unless the victim
    // itself completed it in the instant between the snapshot and the kill.
    const after_ = await db.pool.query<{ request_id: string; status: string; attempt: number; worker_id: string }>(
      `SELECT request_id, status, attempt, worker_id FROM steadytext_queue WHERE request_id = ANY($1::uuid[])`,
      [[...held.keys()]],
    );
    for (const j of after_.rows) {
      assert.equal(j.status, 'completed');
      const reran = j.attempt > held.get(j.request_id)!;
      assert.ok(reran || j.worker_id === victim.name, 'the killed worker\'s jobs ran again under a new claim');
    }
    assert.ok(out.rerun >= 1, 'the killed worker\'s jobs ran again');
    const after = await completedSince(db.pool, new Date(killedAt));
    for (const w of survivors) {
      assert.ok(alive(w), `${w.name} still running`);
      assert.ok((after[w.name] ?? 0) > 0, `${w.name} completed jobs after the kill`);
    }
  } finally {
    await killAll(workers);
    await counter.close();
    await db.drop();
  }
});

test(`SIGKILL every 2 s: ${CHAOS_JOBS} jobs, 3 worker processes, each restarted under its id after the kill`, async () => {
  const db = await createTestDatabase();
  const counter = new CompletionCounter(db.url);
  const names = ['rekill-a', 'rekill-b', 'rekill-c'];
  const current = new Map<string, ChaosWorker>();
  const all: ChaosWorker[] = [];
  const recoveries: Array<Promise<number>> = [];
  let stop = false;
  try {
    await counter.start();
    for (const w of startWorkers(db.url, names)) {
      current.set(w.name, w);
      all.push(w);
    }
    await Promise.all(all.map((w) => w.started));
    // About 12 s of work for the 12 slots, so several kills land mid-run (a
    // restart takes seconds on a loaded machine; with 8 s, two kills were not sure).
    await enqueueJobs(db.pool, CHAOS_JOBS, () => sleepScript(12, 12));
    // The killer: one worker every 2 s, round robin, restarted at once (as systemd would).
    const killer = (async () => {
      for (let k = 0; !stop; k++) {
        await sleep(2000);
        if (stop) break;
        const name = names[k % names.length];
        const victim = current.get(name)!;
        const held = await heldBy(db.pool, name);
        victim.kill('SIGKILL');
        const killedAt = Date.now();
        await victim.exited;
        const [next] = startWorkers(db.url, [name]);
        current.set(name, next);
        all.push(next);
        if (held.size > 0) recoveries.push(timeUntilReleased(db.pool, held, killedAt));
        await next.started;
      }
    })();
    await drain(db.pool, 240_000);
    stop = true;
    await killer;
    const kills = all.length - names.length;
    assert.ok(kills >= 2, `killed ${kills} time(s)`);
    const sorted = (await Promise.all(recoveries)).sort((a, b) => a - b);
    report(
      'sigkill every 2 s',
      `${kills} kills; recovery: median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(2)} s, max ${sorted.at(-1)?.toFixed(2)} s over ${recoveries.length} kill(s) that stranded jobs`,
    );
    const out = await verify(db.pool, counter, CHAOS_JOBS, { mayFail: lostWorker });
    report('sigkill every 2 s', JSON.stringify(out));
    for (const w of current.values()) assert.ok(alive(w), `${w.name} running at the end`);
  } finally {
    stop = true;
    await killAll(all);
    await counter.close();
    await db.drop();
  }
});
