// Chaos: a client sitting idle in transaction holding row locks (on pending
// jobs, and on one job a worker is running), and a long REPEATABLE READ reader
// holding one snapshot for the whole run. Workers skip the locked pending rows
// (SKIP LOCKED) and go on with the rest; once the idle transaction ends, the
// locked jobs run too. Nothing is lost or completed twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { createTestDatabase } from '../helpers/db.ts';
import {
  alive, CHAOS_JOBS, CompletionCounter, completedSince, drain, enqueueJobs, killAll, report, sleepScript, sleep, startWorkers,
  verify, waitFor, type ChaosWorker,
} from './harness.ts';

const IDLE_MS = 4000;

test(`a session idle in transaction holding locks and a long snapshot reader, ${CHAOS_JOBS} jobs, 2 worker processes`, async () => {
  const db = await createTestDatabase();
  const counter = new CompletionCounter(db.url);
  let workers: ChaosWorker[] = [];
  let idle: pg.Client | undefined;
  let reader: pg.Client | undefined;
  try {
    await counter.start();
    reader = await db.connect();
    idle = await db.connect();
    workers = startWorkers(db.url, ['idle-a', 'idle-b']);
    await Promise.all(workers.map((w) => w.started));
    // The reader's snapshot predates every job and lasts the whole run.
    await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await reader.query('SELECT count(*) FROM steadytext_queue');
    await enqueueJobs(db.pool, CHAOS_JOBS, () => sleepScript(8, 8));
    await waitFor('a quarter done and a job running', async () => {
      const r = await db.pool.query(
        `SELECT count(*) FILTER (WHERE status = 'completed')::int AS done, count(*) FILTER (WHERE status = 'processing')::int AS running
         FROM steadytext_queue`,
      );
      return r.rows[0].done >= CHAOS_JOBS / 4 && r.rows[0].running > 0;
    }, 60_000, 20);
    // Idle in transaction: the next 50 pending jobs in claim order and one running job locked.
    await idle.query('BEGIN');
    const locked = await idle.query<{ request_id: string }>(
      `SELECT request_id FROM steadytext_queue WHERE status = 'pending'
       ORDER BY priority DESC, created_at, request_id LIMIT 50 FOR UPDATE`,
    );
    const running = await idle.query<{ request_id: string; worker_id: string }>(
      `SELECT request_id, worker_id FROM steadytext_queue WHERE status = 'processing' LIMIT 1 FOR UPDATE SKIP LOCKED`,
    );
    const lockedAt = new Date();
    await sleep(IDLE_MS / 2);
    // Who waits on whom while the session idles (for the report).
    const blocked = await db.pool.query(
      `SELECT application_name, wait_event_type, left(query, 60) AS query, pg_blocking_pids(pid) = ARRAY[$1::int] AS blocked_by_idle
       FROM pg_stat_activity WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0`,
      [(await idle.query('SELECT pg_backend_pid() AS p')).rows[0].p],
    );
    console.log('[chaos] idle in transaction: sessions waiting on a lock:', blocked.rows);
    await sleep(IDLE_MS / 2);
    const during = await completedSince(db.pool, lockedAt);
    await idle.query('COMMIT');
    const releasedAt = Date.now();
    report('idle in transaction', `completed while a session sat idle in transaction ${IDLE_MS / 1000} s: ${JSON.stringify(during)}` +
      ` (worker ${running.rows[0]?.worker_id} was running the locked job)`);
    const ids = [...locked.rows, ...running.rows].map((r) => r.request_id);
    await waitFor('the locked jobs to end', async () => {
      const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE request_id = ANY($1::uuid[]) AND status IN ('pending', 'processing')`, [ids]);
      return r.rows[0].n === 0;
    }, 60_000, 20);
    report('idle in transaction', `recovery: ${((Date.now() - releasedAt) / 1000).toFixed(2)} s from COMMIT until the ${ids.length} locked jobs ended`);
    await drain(db.pool, 120_000, workers);
    // The long reader still sees its old snapshot, and ending it changes nothing.
    const seen = await reader.query(`SELECT count(*)::int AS n FROM steadytext_queue`);
    assert.equal(seen.rows[0].n, 0, 'the reader kept its snapshot');
    await reader.query('COMMIT');
    const out = await verify(db.pool, counter, CHAOS_JOBS);
    report('idle in transaction', JSON.stringify(out));
    for (const w of workers) {
      assert.ok(alive(w), `${w.name} still running`);
      // The locks stall only the locked jobs, not a worker (the one running a locked job included).
      assert.ok((during[w.name] ?? 0) > 0, `${w.name} kept completing other jobs while the locks were held`);
    }
  } finally {
    await idle?.query('ROLLBACK').catch(() => {});
    await reader?.query('ROLLBACK').catch(() => {});
    await killAll(workers);
    await counter.close();
    await db.drop();
  }
});
