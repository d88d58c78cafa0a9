// Chaos for pipelines (docs/pipelines.md): an embedding pipeline backfills
// CHAOS_JOBS rows while its worker processes are SIGKILLed and restarted,
// their database connections terminated (pg_terminate_backend), and two
// sessions change the source all along: inputs updated (one statement or
// several rows at once, some inside longer transactions), other columns
// updated, rows deleted, inserted, and deleted keys inserted again.
//
// Then the end state, recomputed with the scripted engine's deterministic
// vector (a function of the text alone):
//   * every live row holds the vector of its latest input, none missing, and
//     its bookkeeping row says done, computed from that input;
//   * no bookkeeping for a row that is gone;
//   * a user trigger on the destination logs every write of a row with the
//     input it was written over: every write holds the vector of that very
//     input (a value computed from older content is never written), and no
//     input of a row (every change makes a new one) is written twice.
//
// Three ways: a killed worker started again under its id once the live
// workers have reclaimed its rows; started again at once under its id (as
// systemd restarts a unit: its start takes back what its dead process held,
// restart_of); and with some of the sessions' changes rolled back, a few
// while a worker holds the row (the write reports the row busy and the
// reclaim gives it back once the session lets go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { pipelineStatus, type PipelineStatusRow } from '../../src/db/pipelines/pipelineStatus.ts';
import { vectorFor } from '../helpers/scriptedEngine.ts';
import { alive, CHAOS_JOBS, killAll, pipelineEndState, report, sleep, startWorkers, waitFor, type ChaosWorker } from './harness.ts';

const NAMES = ['pipe-a', 'pipe-b', 'pipe-c'];
const BATCH = 16;
const SLOTS = NAMES.length * 4; // harness WORKER_ARGS: --concurrency 4
/**
 * Engine time of one batch (the scripted engine acts out the script its
 * first text starts with): about 12 s of backfill for the workers' slots, so
 * the faults land while it runs; at most 0.8 s, so a worker killed every
 * 6 s still finishes batches (at CI's size the backfill is short, and the
 * faults strike the sessions' changes instead).
 */
const BATCH_MS = Math.min(800, Math.max(20, Math.round((SLOTS * 12_000) / Math.ceil(CHAOS_JOBS / BATCH))));
/** The sessions' pace: together about a fifth of the rows the workers can write in a second. */
const THROUGHPUT = (SLOTS * BATCH * 1000) / BATCH_MS;
const MUTATION_PAUSE_MS = Math.max(15, Math.round(2000 / (0.2 * THROUGHPUT)));

/** Every text starts with the script; `version` makes each change of a row's input a text of its own. */
const text = (id: number, version: number | string) => `sleep:${BATCH_MS} document ${id} version ${version}`;

interface ChaosCounts {
  kills: number;
  terminated: number;
  terminations: number;
  inputUpdates: number;
  multiUpdates: number;
  otherUpdates: number;
  deletes: number;
  inserts: number;
  reinserts: number;
  transactions: number;
  rolledBack: number;
  deadlocks: number;
}

async function setUp(db: TestDatabase): Promise<void> {
  await db.pool.query(`CREATE TABLE documents (
    id integer PRIMARY KEY,
    body text NOT NULL,
    title text NOT NULL DEFAULT '',
    embedding double precision[]
  )`);
  await db.pool.query(`INSERT INTO documents (id, body) SELECT i, $1 || ' document ' || i || ' version 0' FROM generate_series(1, $2::int) AS i`, [
    `sleep:${BATCH_MS}`,
    CHAOS_JOBS,
  ]);
  // Every write of the destination, with the input it was written over.
  await db.pool.query(`CREATE TABLE write_log (n bigserial PRIMARY KEY, id integer NOT NULL, body text NOT NULL, embedding double precision[],
                                               at timestamptz NOT NULL DEFAULT clock_timestamp())`);
  await db.pool.query(`CREATE FUNCTION log_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO write_log (id, body, embedding) VALUES (NEW.id, NEW.body, NEW.embedding);
      RETURN NULL;
    END $$`);
  await db.pool.query(`CREATE TRIGGER log_write AFTER UPDATE OF embedding ON documents FOR EACH ROW EXECUTE FUNCTION log_write()`);
}

/**
 * Two sessions changing the source until `stop()`. Every input written is new
 * (a global version counter); ids above CHAOS_JOBS are new rows.
 */
function startMutators(db: TestDatabase, counts: ChaosCounts, rollbacks: boolean) {
  let stopped = false;
  let version = 0;
  let nextId = CHAOS_JOBS;
  const deleted: number[] = [];
  const errors: string[] = [];
  const pick = () => 1 + Math.floor(Math.random() * nextId);
  const one = async (c: pg.PoolClient) => {
    const r = Math.random();
    const id = pick();
    if (r < 0.4) {
      await c.query(`UPDATE documents SET body = $2 WHERE id = $1`, [id, text(id, ++version)]);
      counts.inputUpdates++;
    } else if (r < 0.5) {
      // several rows in one statement, each a new input of its own
      const v = ++version;
      await c.query(`UPDATE documents SET body = $3 || ' document ' || id || ' version ' || $2 WHERE id BETWEEN $1 AND $1 + 5`, [
        id,
        `${v}m`,
        `sleep:${BATCH_MS}`,
      ]);
      counts.multiUpdates++;
    } else if (r < 0.62) {
      await c.query(`UPDATE documents SET title = title || '+' WHERE id = $1`, [id]);
      counts.otherUpdates++;
    } else if (r < 0.75) {
      const d = await c.query(`DELETE FROM documents WHERE id = $1`, [id]);
      if (d.rowCount) {
        deleted.push(id);
        counts.deletes++;
      }
    } else if (r < 0.88 || deleted.length === 0) {
      const n = ++nextId;
      await c.query(`INSERT INTO documents (id, body) VALUES ($1, $2)`, [n, text(n, ++version)]);
      counts.inserts++;
    } else {
      // a deleted key comes back, with a new input
      const k = deleted.splice(Math.floor(Math.random() * deleted.length), 1)[0];
      const ins = await c.query(`INSERT INTO documents (id, body) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, [k, text(k, ++version)]);
      if (ins.rowCount) counts.reinserts++;
    }
  };
  const session = async () => {
    const c = await db.pool.connect();
    try {
      while (!stopped) {
        try {
          if (rollbacks && Math.random() < 0.1) {
            // a change to a row a worker holds, undone while its batch is on the engine (or being written)
            const held = await c.query(`SELECT (row_key->>0)::int AS id FROM steadytext_pipeline_rows
                                        WHERE status = 'processing' ORDER BY random() LIMIT 1`);
            const id = held.rows[0]?.id ?? pick();
            await c.query('BEGIN');
            await c.query(`UPDATE documents SET body = $2 WHERE id = $1`, [id, text(id, ++version)]);
            await sleep(BATCH_MS);
            await c.query('ROLLBACK');
            counts.transactions++;
            counts.rolledBack++;
          } else if (Math.random() < 0.15) {
            // a longer transaction: its marks and row locks are held across statements
            await c.query('BEGIN');
            for (let i = 0; i < 3; i++) {
              await one(c);
              await sleep(20);
            }
            const rollback = rollbacks && Math.random() < 0.4;
            await c.query(rollback ? 'ROLLBACK' : 'COMMIT');
            counts.transactions++;
            if (rollback) counts.rolledBack++;
          } else {
            await one(c);
          }
        } catch (err) {
          await c.query('ROLLBACK').catch(() => {});
          // the two sessions' transactions may lock the same rows in opposite orders
          if ((err as { code?: string }).code === '40P01') counts.deadlocks++;
          else throw err;
        }
        await sleep(MUTATION_PAUSE_MS * (0.5 + Math.random()));
      }
    } catch (err) {
      errors.push(String(err));
    } finally {
      c.release();
    }
  };
  const sessions = [session(), session()];
  return {
    async stop() {
      stopped = true;
      await Promise.all(sessions);
      assert.deepEqual(errors, [], 'the sessions changing the source met no error');
    },
  };
}

async function status(db: pg.Pool): Promise<PipelineStatusRow> {
  const [s] = await pipelineStatus(db, 'chaos_embed');
  if (!s) throw new Error('no status for pipeline chaos_embed');
  return s;
}

/** Waits until the pipeline holds every row done; prints where it stands and the workers' logs if it does not. */
async function settled(db: TestDatabase, workers: ChaosWorker[], timeoutMs: number): Promise<void> {
  let last: PipelineStatusRow | undefined;
  try {
    await waitFor(
      'every row written and nothing left to do',
      async () => {
        last = await status(db.pool).catch(() => last);
        if (!last) return false;
        const live = (await db.pool.query(`SELECT count(*)::int AS n FROM documents`)).rows[0].n;
        return !last.backfilling && last.pending + last.processing + last.failed === 0 && last.done === live && last.rows === live;
      },
      timeoutMs,
      250,
    );
  } catch (err) {
    const open = await db.pool
      .query(`SELECT row_key, status, worker_id, claim, attempts, error, run_at, changed_at FROM steadytext_pipeline_rows
              WHERE status <> 'done' ORDER BY changed_at LIMIT 10`)
      .catch((e) => ({ rows: [String(e)] }));
    console.log('[chaos] pipeline status:', JSON.stringify(last));
    console.log('[chaos] rows not done:', open.rows);
    for (const w of workers) console.log(`[chaos] ${w.name} log tail:\n${(w.stdout() + w.stderr()).split('\n').slice(-12).join('\n')}`);
    throw err;
  }
}

/** The end state against the scripted engine's vectors; returns what the write log counted. */
async function verify(db: TestDatabase): Promise<{ rows: number; writes: number; changesWritten: number }> {
  const { docs, problems } = await pipelineEndState(db.pool);
  // every write: the vector of the input it was written over; one write per input of a row
  const log = (await db.pool.query<{ id: number; body: string; embedding: number[] | null; n: number }>(
    `SELECT id, body, embedding, count(*) OVER (PARTITION BY id, body)::int AS n FROM write_log ORDER BY n DESC, id`,
  )).rows;
  for (const w of log) {
    if (JSON.stringify(w.embedding) !== JSON.stringify(vectorFor(w.body))) {
      problems.push(`a write of row ${w.id} over ${JSON.stringify(w.body)} holds ${JSON.stringify(w.embedding)}, another input's vector`);
    }
    if (w.n > 1) problems.push(`row ${w.id}'s input ${JSON.stringify(w.body)} written ${w.n} times`);
  }
  const written = new Set(log.map((w) => `${w.id}\u0000${w.body}`));
  for (const d of docs) if (!written.has(`${d.id}\u0000${d.body}`)) problems.push(`row ${d.id}: its value was never written (no log entry)`);
  assert.deepEqual([...new Set(problems)].slice(0, 20), [], `${problems.length} problem(s)`);
  return { rows: docs.length, writes: log.length, changesWritten: written.size };
}

interface Scenario {
  /** Some of the sessions' transactions roll back. */
  rollbacks: boolean;
  /**
   * A killed worker starts again at once under its id (as systemd restarts
   * a unit); otherwise once the live workers' reclaim took back its rows.
   */
  restartAtOnce: boolean;
  /** How long the end may take to settle after the chaos. */
  drainMs: number;
}

async function scenario(name: string, o: Scenario): Promise<void> {
  const db = await createTestDatabase();
  const counts: ChaosCounts = {
    kills: 0, terminated: 0, terminations: 0, inputUpdates: 0, multiUpdates: 0, otherUpdates: 0,
    deletes: 0, inserts: 0, reinserts: 0, transactions: 0, rolledBack: 0, deadlocks: 0,
  };
  const current = new Map<string, ChaosWorker>();
  const all: ChaosWorker[] = [];
  const extra = ['--pipeline-batch-size', String(BATCH)];
  let stop = false;
  try {
    await setUp(db);
    for (const w of startWorkers(db.url, NAMES, extra)) {
      current.set(w.name, w);
      all.push(w);
    }
    await Promise.all(all.map((w) => w.started));
    const startedAt = Date.now();
    await db.pool.query(`SELECT steadytext_pipeline_create('chaos_embed', 'documents', 'body', 'embedding')`);
    await waitFor('the backfill under way', async () => (await status(db.pool)).done > 0, 60_000, 50).catch(async (err) => {
      console.log('[chaos] status:', JSON.stringify(await status(db.pool)));
      for (const w of current.values()) console.log(`[chaos] ${w.name} log tail:\n${(w.stdout() + w.stderr()).split('\n').slice(-12).join('\n')}`);
      throw err;
    });
    const mutators = startMutators(db, counts, o.rollbacks);
    // SIGKILL one worker every 2 s, round robin, started again under its id
    const killer = (async () => {
      for (let k = 0; !stop; k++) {
        await sleep(k === 0 ? 1000 : 2000);
        if (stop) break;
        const victim = current.get(NAMES[k % NAMES.length])!;
        victim.kill('SIGKILL');
        await victim.exited;
        counts.kills++;
        if (!o.restartAtOnce) {
          await waitFor(`${victim.name}'s rows reclaimed by the live workers`, async () => {
            const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_pipeline_rows WHERE status = 'processing' AND worker_id = $1`, [
              victim.name,
            ]);
            return r.rows[0].n === 0;
          }, 60_000, 100);
        }
        const [next] = startWorkers(db.url, [victim.name], extra);
        current.set(victim.name, next);
        all.push(next);
        await next.started;
      }
    })();
    // every worker connection (pool, LISTEN) terminated every 1.5 s
    const terminator = (async () => {
      while (!stop) {
        await sleep(1500);
        if (stop) break;
        const r = await db.pool.query<{ n: number }>(
          `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND application_name LIKE 'steadytext-worker%'`,
        );
        counts.terminations++;
        counts.terminated += r.rows[0].n;
      }
    })();
    // chaos until the backfill is (nearly) through and every fault has struck a few times
    await waitFor(
      'the backfill through and the faults struck',
      async () => {
        const s = await status(db.pool);
        return !s.backfilling && s.done >= 0.8 * s.rows && counts.kills >= 3 && counts.terminations >= 3;
      },
      300_000,
      250,
    );
    const chaosSeconds = (Date.now() - startedAt) / 1000;
    stop = true;
    await Promise.all([killer, terminator]);
    await mutators.stop();
    for (const w of current.values()) assert.ok(alive(w), `${w.name} running after the chaos`);
    await settled(db, [...current.values()], o.drainMs);
    const out = await verify(db);
    report(name, `${CHAOS_JOBS} rows, batches of ${BATCH} at ${BATCH_MS} ms; ${chaosSeconds.toFixed(1)} s of chaos: ${JSON.stringify(counts)}`);
    report(name, `end: ${out.rows} rows, ${out.writes} writes for ${out.changesWritten} inputs, none twice, each its input's vector`);
    for (const w of current.values()) assert.ok(alive(w), `${w.name} running at the end`);
  } finally {
    stop = true;
    await killAll(all);
    await db.drop();
  }
}

test(`pipeline backfill of ${CHAOS_JOBS} rows under SIGKILLed workers, terminated backends and sessions changing the source`, { timeout: 900_000 }, async () => {
  await scenario('pipeline backfill', { rollbacks: false, restartAtOnce: false, drainMs: 240_000 });
});

test(`pipeline backfill of ${CHAOS_JOBS} rows, each killed worker started again at once under its id`, { timeout: 900_000 }, async () => {
  await scenario('pipeline backfill, restarts at once', { rollbacks: false, restartAtOnce: true, drainMs: 240_000 });
});

test(`pipeline backfill of ${CHAOS_JOBS} rows under the same faults, some of the sessions' changes rolled back`, { timeout: 900_000 }, async () => {
  await scenario('pipeline backfill with rollbacks', { rollbacks: true, restartAtOnce: false, drainMs: 240_000 });
});
