// The three queues under test, behind one shape: install, enqueue no-op jobs
// (one call per job / batched), spawn worker processes with a no-op task,
// know when the queue is drained. Each system has its own database on the
// same server.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { Logger as GraphileLogger, runMigrations } from 'graphile-worker';
import { migrate } from '../../src/db/schema/migrate.ts';
import { spawnTs, type Proc } from './proc.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const NOOP_ENGINE = path.join(ROOT, 'bench/noopEngine.ts');
const STEADYTEXT_WORKER = path.join(ROOT, 'test/worker/fixtures/runWorker.ts');
const GRAPHILE_RUNNER = path.join(ROOT, 'bench/runners/graphileWorker.ts');
export const GRAPHILE_BACKFILL_RUNNER = path.join(ROOT, 'bench/runners/graphileBackfill.ts');
const BOSS_RUNNER = path.join(ROOT, 'bench/runners/pgBoss.ts');

export interface SpawnOpts {
  concurrency: number;
  env?: NodeJS.ProcessEnv;
  /** pg-steadytext only: engine module (default: the no-op engine) and worker env. */
  engineModule?: string | null;
}

export interface QueueSystem {
  name: string;
  url: string;
  /** How this system's "one call per job" enqueue is made. */
  singleHow: string;
  batchHow: string;
  setup(): Promise<void>;
  /** Empties the queue (and the table). */
  reset(db: pg.Client): Promise<void>;
  /** `n` no-op jobs, enqueued one call per job in transactions of `chunk`. */
  enqueueSingle(db: pg.Client, n: number, chunk: number): Promise<void>;
  /** `n` no-op jobs through the batch API, `chunk` per call. */
  enqueueBatch(db: pg.Client, n: number, chunk: number): Promise<void>;
  /** One job carrying `id`, committed on return; returns the job's key. */
  enqueueOne(db: pg.Client, id: string): Promise<string>;
  /** Whether no job is waiting or running. */
  drained(db: pg.Client): Promise<boolean>;
  /** Jobs finished since the last reset. */
  finished(db: pg.Client, enqueued: number): Promise<number>;
  spawn(opts: SpawnOpts): Proc;
  close(): Promise<void>;
}

export function steadytext(url: string): QueueSystem {
  return {
    name: 'pg-steadytext',
    url,
    singleHow: 'SELECT steadytext_generate_async(...) FROM generate_series(...) (PL/pgSQL call per job)',
    batchHow: 'steadytext_generate_batch_async(text[])',
    async setup() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await migrate(c);
      await c.end();
    },
    async reset(db) {
      await db.query('TRUNCATE steadytext_queue, steadytext_cache');
      await db.query("DELETE FROM steadytext_workers");
    },
    async enqueueSingle(db, n, chunk) {
      for (let done = 0; done < n; done += chunk) {
        const k = Math.min(chunk, n - done);
        await db.query(
          `SELECT steadytext_generate_async('noop ' || i, max_tokens => 1, use_cache => false) FROM generate_series($1::int, $2::int) AS i`,
          [done, done + k - 1],
        );
      }
    },
    async enqueueBatch(db, n, chunk) {
      for (let done = 0; done < n; done += chunk) {
        const k = Math.min(chunk, n - done);
        await db.query(
          `SELECT steadytext_generate_batch_async(array(SELECT 'noop ' || i FROM generate_series($1::int, $2::int) AS i), max_tokens => 1, use_cache => false)`,
          [done, done + k - 1],
        );
      }
    },
    async enqueueOne(db, id) {
      const r = await db.query<{ id: string }>(
        'SELECT steadytext_generate_async($1, max_tokens => 1, use_cache => false) AS id',
        [id],
      );
      return r.rows[0].id;
    },
    async drained(db) {
      const r = await db.query(
        "SELECT EXISTS (SELECT 1 FROM steadytext_queue WHERE status IN ('pending', 'processing')) AS busy",
      );
      return !r.rows[0].busy;
    },
    async finished(db) {
      const r = await db.query("SELECT count(*)::int AS n FROM steadytext_queue WHERE status = 'completed'");
      return r.rows[0].n;
    },
    spawn({ concurrency, env = {}, engineModule }) {
      // Every other setting is the worker's own default (src/settings.ts); the
      // bench only silences its log unless a scenario asks for lines.
      const args = ['--database-url', url, '--concurrency', String(concurrency)];
      if (engineModule !== null) args.push('--engine-module', engineModule ?? NOOP_ENGINE);
      return spawnTs(STEADYTEXT_WORKER, args, { STEADYTEXT_WORKER_LOG_LEVEL: 'silent', ...env });
    },
    async close() {},
  };
}

/**
 * graphile-worker. Default mode: its defaults (no localQueue, no batch
 * delays: one get_job and one complete_job per job). `batched`: its headline
 * mode, localQueue (size 500) with completeJobBatchDelay/failJobBatchDelay 0
 * (bench/runners/graphileWorker.ts). Only the worker side differs.
 */
export function graphileWorker(url: string, batched = false): QueueSystem {
  return {
    name: batched ? 'graphile-worker (batched)' : 'graphile-worker',
    url,
    singleHow: 'SELECT graphile_worker.add_job(...) FROM generate_series(...)',
    batchHow: 'graphile_worker.add_jobs(job_spec[])',
    async setup() {
      await runMigrations({ connectionString: url, logger: silentLogger() });
    },
    async reset(db) {
      await db.query('TRUNCATE graphile_worker._private_jobs CASCADE');
    },
    async enqueueSingle(db, n, chunk) {
      for (let done = 0; done < n; done += chunk) {
        const k = Math.min(chunk, n - done);
        await db.query(
          `SELECT graphile_worker.add_job('noop', json_build_object('id', i)) FROM generate_series($1::int, $2::int) AS i`,
          [done, done + k - 1],
        );
      }
    },
    async enqueueBatch(db, n, chunk) {
      for (let done = 0; done < n; done += chunk) {
        const k = Math.min(chunk, n - done);
        await db.query(
          `SELECT graphile_worker.add_jobs(array(
             SELECT ROW('noop', json_build_object('id', i), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
             FROM generate_series($1::int, $2::int) AS i))`,
          [done, done + k - 1],
        );
      }
    },
    async enqueueOne(db, id) {
      await db.query(`SELECT graphile_worker.add_job('noop', json_build_object('id', $1::text))`, [id]);
      return id;
    },
    async drained(db) {
      const r = await db.query('SELECT EXISTS (SELECT 1 FROM graphile_worker._private_jobs) AS busy');
      return !r.rows[0].busy;
    },
    async finished(db, enqueued) {
      // graphile-worker deletes a job when it completes
      const r = await db.query('SELECT count(*)::int AS n FROM graphile_worker._private_jobs');
      return enqueued - r.rows[0].n;
    },
    spawn({ concurrency, env = {} }) {
      return spawnTs(GRAPHILE_RUNNER, [url, String(concurrency), batched ? 'batched' : 'default'], env);
    },
    async close() {},
  };
}

function silentLogger() {
  return new GraphileLogger(() => () => {});
}

/**
 * pg-boss 12. `batchSize` 1 with `concurrency` work() loops per process
 * (localConcurrency) is the equivalent of the other two (at most
 * `concurrency` jobs in hand per process); a larger batchSize is pg-boss's
 * own batched fetch (and completion of the batch). The queue is created with
 * notify: true and the workers LISTEN (bench/runners/pgBoss.ts).
 */
export function pgBoss(url: string, batchSize = 1): QueueSystem {
  let boss: PgBoss | undefined;
  const client = async () => {
    if (!boss) {
      boss = new PgBoss({ connectionString: url, max: 10, supervise: false, schedule: false, useListenNotify: true });
      boss.on('error', () => {});
      await boss.start();
    }
    return boss;
  };
  return {
    name: batchSize === 1 ? 'pg-boss' : `pg-boss (batchSize ${batchSize})`,
    url,
    singleHow: 'boss.send() per job from Node (pg-boss has no SQL enqueue function), 8 in flight',
    batchHow: "boss.insert('noop', jobs[])",
    async setup() {
      const b = await client();
      await b.createQueue('noop', { notify: true });
    },
    async reset(db) {
      await db.query("DELETE FROM pgboss.job WHERE name = 'noop'");
      await db.query("DELETE FROM pgboss.archive WHERE name = 'noop'").catch(() => {});
    },
    async enqueueSingle(_db, n) {
      const b = await client();
      let next = 0;
      const lane = async () => {
        while (next < n) {
          const i = next++;
          await b.send('noop', { id: i });
        }
      };
      await Promise.all(Array.from({ length: 8 }, lane));
    },
    async enqueueBatch(_db, n, chunk) {
      const b = await client();
      for (let done = 0; done < n; done += chunk) {
        const k = Math.min(chunk, n - done);
        await b.insert('noop', Array.from({ length: k }, (_, j) => ({ data: { id: done + j } })));
      }
    },
    async enqueueOne(_db, id) {
      const b = await client();
      await b.send('noop', { id });
      return id;
    },
    async drained(db) {
      const r = await db.query(
        "SELECT EXISTS (SELECT 1 FROM pgboss.job WHERE name = 'noop' AND state < 'completed') AS busy",
      );
      return !r.rows[0].busy;
    },
    async finished(db) {
      const r = await db.query("SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'noop' AND state = 'completed'");
      return r.rows[0].n;
    },
    spawn({ concurrency, env = {} }) {
      return spawnTs(BOSS_RUNNER, [url, String(concurrency), String(batchSize)], env);
    },
    async close() {
      await boss?.stop({ graceful: false }).catch(() => {});
      boss = undefined;
    },
  };
}
