// Chaos: the PostgreSQL server crashes (pg_ctl stop -m immediate: WAL
// recovery) while 2 worker processes backfill a pipeline. A pipeline's
// claims and writes commit without waiting for the disk (docs/pipelines.md),
// so the crash may undo writes the workers saw succeed; the workers, alive
// all along, find the server restarted when they reconnect and put the rows
// they hold back to pending. End state, recomputed with the scripted
// engine's deterministic vector: every row holds the vector of its input and
// its bookkeeping says done, computed from that input. (Whether a crash
// lands inside a write's window of a fraction of a second is chance; the
// lost write itself is made by hand in test/pipelines/server-restart.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { alive, CHAOS_JOBS, killAll, pipelineEndState, report, startOwnServer, startWorkers, waitFor, type ChaosWorker } from './harness.ts';

const BATCH = 16;
/** Engine time of one batch: about 8 s of backfill for the two workers' 8 slots, so the crash lands inside it. */
const BATCH_MS = Math.min(800, Math.max(20, Math.round((8 * 8_000) / Math.ceil(CHAOS_JOBS / BATCH))));

test(`PostgreSQL crashed (-m immediate) during a pipeline backfill of ${CHAOS_JOBS} rows, 2 worker processes`, async () => {
  const server = await startOwnServer();
  const pool = new pg.Pool({ connectionString: server.url, max: 4 });
  pool.on('error', () => {}); // idle connections die with the server
  let workers: ChaosWorker[] = [];
  try {
    await pool.query(`CREATE TABLE documents (id integer PRIMARY KEY, body text NOT NULL, embedding double precision[])`);
    await pool.query(`INSERT INTO documents (id, body) SELECT i, $1 || ' document ' || i FROM generate_series(1, $2::int) AS i`, [
      `sleep:${BATCH_MS}`,
      CHAOS_JOBS,
    ]);
    workers = startWorkers(server.url, ['restart-a', 'restart-b']);
    await Promise.all(workers.map((w) => w.started));
    await pool.query(`SELECT steadytext_pipeline_create('docs', 'documents', 'body', 'embedding', batch_size => ${BATCH})`);
    await waitFor('a quarter written', async () => {
      const r = await pool.query(`SELECT count(*)::int AS n FROM documents WHERE embedding IS NOT NULL`);
      return r.rows[0].n >= CHAOS_JOBS / 4;
    }, 60_000, 20);
    const { stoppedAt, upAt } = await server.restart('immediate', 1000);
    await waitFor('every row written after the crash', async () => {
      const r = await pool
        .query<{ done: number; all: number }>(`SELECT count(*) FILTER (WHERE status = 'done')::int AS done, count(*)::int AS all FROM steadytext_pipeline_rows`)
        .catch(() => undefined);
      return r?.rows[0].done === CHAOS_JOBS && r.rows[0].all === CHAOS_JOBS;
    }, 120_000, 100);
    report('pipeline crash -m immediate', `every row done ${((Date.now() - upAt) / 1000).toFixed(2)} s after the server was back (down ${((upAt - stoppedAt) / 1000).toFixed(2)} s)`);

    const { docs, problems } = await pipelineEndState(pool);
    assert.equal(docs.length, CHAOS_JOBS);
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problem(s)`);
    for (const w of workers) assert.ok(alive(w), `${w.name} still running (reconnected on its own)`);
  } finally {
    await killAll(workers);
    await pool.end().catch(() => {});
    await server.stop();
  }
});
