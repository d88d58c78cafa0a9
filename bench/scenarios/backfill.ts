// Scenario `backfill`: a pipeline (docs/pipelines.md) filling a 1024-dimension
// `real[]` column of an existing table, against what else fills it:
//
//   bare      the same table updated by a bare batched `UPDATE ... FROM
//             unnest(...)` with the very vectors the no-op engine answers
//             (bench/lib/vectors.ts) as text, the way a user's script (and
//             graphile-worker's task below) sends them, same batch size, one
//             session, nothing else;
//   bare-binary  the physical limit: the same UPDATE with the vectors sent
//             as one binary real[] a statement (what the pipeline's worker
//             sends), so the server parses no numbers;
//   pipeline  `steadytext_pipeline_create(...)` with a worker running the
//             no-op engine (BENCH_EMBED_DIMENSIONS), until
//             steadytext_pipeline_status says done = rows and pending = 0;
//   pattern   the spec's own pattern: `steadytext_embed_async(content)` per
//             row WHERE embedding IS NULL, and a `process_completed_embeddings()`
//             loop that UPDATEs documents with `steadytext_get_async_result(id)`
//             over completed queue rows (same worker, same engine);
//   graphile  graphile-worker's batch jobs (an array payload of row ids per
//             job, batch-size rows a job) in its batched mode; the task reads
//             the rows, asks the same no-op engine, writes with one UPDATE
//             (bench/runners/graphileBackfill.ts).
//
// Each system gets a fresh database with the same `documents` table
// (autovacuum off on it, so no vacuum's WAL lands in another system's
// window), a CHECKPOINT, then one timed run: the clock runs from the first
// statement of the backfill (the create call, the first enqueue, the first
// UPDATE) until every row holds its vector; WAL bytes are
// pg_current_wal_lsn() after minus before (the server runs nothing else).
// pgvector is not installed here: the destination column is `real[]`.
//
// Then, on the pipeline's table (the worker still running): sync lag, one
// input change at a time (an UPDATE of `content`, committed) until the
// worker's write of the new vector is seen (an AFTER UPDATE OF embedding
// trigger's NOTIFY at a listener), and until the engine call began (the
// no-op engine's IPC report).
//
// Last, the tiny real model: pipeline rows/s against a direct engine loop
// (bench/lib/engineLoop.ts) at the same batch size, in interleaved pairs of
// runs lasting seconds (bench/lib/pairs.ts).
import pg from 'pg';
import { runMigrations, Logger as GraphileLogger } from 'graphile-worker';
import { loadEngine } from '../../src/engine/index.ts';
import { engineLoop, texts } from '../lib/engineLoop.ts';
import { interleave, sizeFor, spread, type Spread } from '../lib/pairs.ts';
import { spawnTs, type Proc } from '../lib/proc.ts';
import { dist, now, round, sleep, type Dist } from '../lib/stats.ts';
import { GRAPHILE_BACKFILL_RUNNER, steadytext } from '../lib/systems.ts';
import { arrayLiteral, benchVector } from '../lib/vectors.ts';
import { binaryRealArray } from '../../src/postgres/binaryRealArray.ts';
import { cpuSnapshot, cpuUsed, setPostmaster } from '../lib/engineTrace.ts';
import type { Progress } from './queue.ts';

export type BackfillSystem = 'bare' | 'bare-binary' | 'pipeline' | 'pattern' | 'graphile';
export const BACKFILL_SYSTEMS: readonly BackfillSystem[] = ['bare', 'bare-binary', 'pipeline', 'pattern', 'graphile'];

export interface BackfillRun {
  system: BackfillSystem;
  how: string;
  rows: number;
  /** Rows that hold their vector at the end (all of them, unless the run was capped). */
  written: number;
  seconds: number;
  rowsPerSecond: number;
  /** pg_current_wal_lsn() after minus before the timed run. */
  walBytes: number;
  walBytesPerRow: number;
  /**
   * A checkpoint began inside the window (pg_control_checkpoint().redo_lsn):
   * its full-page images of the pages written after it are in walBytes.
   */
  checkpointInside: boolean;
  /** Stopped at the time cap before every row was written: rate = written / elapsed. */
  capped: boolean;
  /** pattern: seconds the enqueue statements took (inside `seconds`, beside the processing loop). */
  enqueueSeconds?: number;
  /**
   * CPU ms per 1,000 rows written, from /proc: the bench server's PostgreSQL
   * (every backend, the checkpointer and WAL writer), the worker process
   * (all threads), this process; and the machine's busy share over the run
   * (other work on a shared machine included).
   */
  cpuMsPer1kRows: { postgres: number; worker: number; bench: number };
  machineBusy: number;
  /** BENCH_BACKFILL_TRACE=1: the statements that took the server's time (pg_stat_statements, track = all). */
  statements?: TracedStatement[];
  /** pipeline: the most rows steadytext_pipeline_status showed `processing` at once (claimed, not yet written). */
  maxProcessing?: number;
}

/**
 * One statement's share of a traced run. track = all: a statement run inside
 * a function is counted on its own and again inside its caller's time.
 */
export interface TracedStatement {
  query: string;
  calls: number;
  totalMs: number;
  rows: number;
  /** Server time per row backfilled, µs. */
  usPerRow: number;
}

export interface SyncLag {
  samples: number;
  /** The input change committed (the UPDATE returned) → the NOTIFY of the trigger on the worker's write of the new vector arrived, ms. */
  changeToWritten: Dist;
  /** The input change committed → the engine call with the new input began (worker), ms. */
  changeToStart: Dist;
}

export interface TinyRun {
  side: 'direct' | 'pipeline';
  pair: number;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  /** CPU ms per 1,000 rows: PostgreSQL, the worker process, this process (the direct loop's engine runs here). */
  cpuMsPer1kRows: { postgres: number; worker: number; bench: number };
  redone?: true;
}

export interface TinyBackfill {
  /** Rows per run (the last pair's; a pair with a run under minSeconds is run again, larger). */
  rows: number;
  batchSize: number;
  parallel: number;
  pairs: number;
  minSeconds: number;
  redone: number;
  shortestSeconds: number;
  direct: Spread;
  pipeline: Spread;
  /** pipeline rows/s / direct rows/s, per pair. */
  ratio: Spread;
  /** Total CPU (all three) per 1,000 rows, each side, over the pairs. */
  cpuMsPer1kRows: { direct: Spread; pipeline: Spread };
  runs: TinyRun[];
}

export interface BackfillResult {
  rows: number;
  dimensions: number;
  batchSize: number;
  /** One worker process for each queue-based system, with this concurrency. */
  concurrency: number;
  destinationType: 'real[]';
  /** The bare UPDATE's sessions. */
  bareSessions: number;
  capSeconds: number;
  patternCapSeconds: number;
  runs: BackfillRun[];
  lag?: SyncLag;
  tiny?: TinyBackfill;
}

export interface BackfillOptions {
  rows: number;
  dimensions: number;
  batchSize: number;
  concurrency: number;
  /** Sessions of the bare UPDATE (default 1). */
  bareSessions: number;
  /** A system still writing after this many seconds is stopped (rate = rows written / elapsed). */
  capSeconds: number;
  /** The same for the spec's pattern, which is far slower (its queue row carries each 20 kB result). */
  patternCapSeconds: number;
  lagSamples: number;
  tinyRows: number;
  tinyBatchSize: number;
  pairs: number;
  minSeconds: number;
  /** Which systems run (BENCH_BACKFILL_SYSTEMS), and whether the lag and tiny-model parts run. */
  systems: readonly BackfillSystem[];
  lag: boolean;
  tiny: boolean;
}

export interface Databases {
  create(name: string): Promise<string>;
  drop(name: string): Promise<void>;
}

const HOW: Record<BackfillSystem, string> = {
  bare: 'UPDATE documents SET embedding = u.v::real[] FROM unnest($1::bigint[], $2::text[]) u(id, v) WHERE d.id = u.id, batch-size rows a statement (one session unless BENCH_BACKFILL_BARE_SESSIONS says more)',
  'bare-binary':
    'UPDATE documents SET embedding = ($2::real[])[(u.n - 1) * dims + 1 : u.n * dims] FROM unnest($1::bigint[]) WITH ORDINALITY u(id, n) WHERE d.id = u.id, $2 every vector of the statement as one binary real[] (as the pipeline\'s worker sends them), batch-size rows a statement, sessions as bare',
  pipeline: "steadytext_pipeline_create('backfill', 'documents', 'content', 'embedding', 'embed', '{}', 0, false, batch size); one worker",
  pattern:
    'INSERT INTO embedding_requests SELECT id, steadytext_embed_async(content, use_cache => false) FROM documents WHERE embedding IS NULL (batch-size rows a transaction) beside a loop of process_completed_embeddings() (UPDATE documents SET embedding = steadytext_get_async_result(request_id) over completed queue rows); one worker',
  graphile: 'graphile_worker.add_jobs(): one batch job (array payload of {id}) per batch-size rows; worker in batched mode (localQueue 500, completeJobBatchDelay 0); task: SELECT content, embed, UPDATE ... FROM unnest',
};

const DOCUMENT_TEXT = (tag: string) => `${tag} ' || i || ': the quick brown fox jumps over the lazy dog near the river bank`;

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

/** The source table every system fills: `rows` rows, embedding NULL, vacuumed and analysed. */
async function makeDocuments(db: pg.Client, rows: number, progress?: Progress, label = ''): Promise<void> {
  await db.query(
    `CREATE TABLE documents (id bigint PRIMARY KEY, content text NOT NULL, embedding real[])
     WITH (autovacuum_enabled = off, toast.autovacuum_enabled = off)`,
  );
  await fillDocuments(db, rows, 'document', progress, label);
}

async function fillDocuments(db: pg.Client, rows: number, tag: string, progress?: Progress, label = ''): Promise<void> {
  const chunk = 100_000;
  for (let done = 0; done < rows; done += chunk) {
    const k = Math.min(chunk, rows - done);
    await db.query(`INSERT INTO documents (id, content) SELECT i, '${DOCUMENT_TEXT(tag)}' FROM generate_series($1::bigint, $2::bigint) AS i`, [done + 1, done + k]);
    progress?.(label, done + k, rows);
  }
  await db.query('VACUUM (ANALYZE) documents');
}

const written = async (db: pg.Client) =>
  Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM documents WHERE embedding IS NOT NULL')).rows[0].n);

/**
 * CHECKPOINT, then `f` timed, with the WAL it wrote (the whole server's:
 * nothing else runs), whether a checkpoint began inside, and the CPU the
 * server, the worker (`workerPid`) and this process spent meanwhile.
 */
async function timed(db: pg.Client, workerPid: number | undefined, f: () => Promise<{ capped?: boolean; enqueueSeconds?: number; maxProcessing?: number } | void>) {
  await db.query('CHECKPOINT');
  const lsn = (await db.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l;
  const before = cpuSnapshot(workerPid ?? process.pid);
  const t0 = now();
  const extra = (await f()) ?? {};
  const seconds = (now() - t0) / 1000;
  const cpu = cpuUsed(before, cpuSnapshot(workerPid ?? process.pid));
  const r = await db.query<{ b: string; inside: boolean }>(
    'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint AS b, (SELECT redo_lsn > $1::pg_lsn FROM pg_control_checkpoint()) AS inside',
    [lsn],
  );
  const sum = (x: Record<string, number>) => Object.values(x).reduce((a, b) => a + b, 0);
  return {
    seconds,
    walBytes: Number(r.rows[0].b),
    checkpointInside: r.rows[0].inside,
    cpu: { postgresS: cpu.postgresS, workerS: workerPid ? sum(cpu.worker) : 0, benchS: sum(cpu.bench), busy: cpu.machineBusyS / Math.max(cpu.machineBusyS + cpu.machineIdleS, 1e-9) },
    ...extra,
  };
}

const TRACE = process.env.BENCH_BACKFILL_TRACE === '1';

/** Traced runs: pg_stat_statements in this database, nested statements counted too (sessions that connect from now on). */
async function traceSetup(db: pg.Client, name: string): Promise<void> {
  await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  await db.query(`ALTER DATABASE ${name} SET pg_stat_statements.track = 'all'`);
}

async function traceTake(db: pg.Client, rows: number): Promise<TracedStatement[]> {
  const r = await db.query<{ query: string; calls: string; ms: number; rows: string }>(
    `SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 200) AS query, calls, total_exec_time AS ms, rows
     FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
     ORDER BY total_exec_time DESC LIMIT 15`,
  );
  return r.rows.map((x) => ({
    query: x.query,
    calls: Number(x.calls),
    totalMs: round(x.ms, 1),
    rows: Number(x.rows),
    usPerRow: round((x.ms * 1000) / Math.max(rows, 1), 1),
  }));
}

/** Waits until `ok()`, polling every 50 ms; throws after `limitMs` or when `check()` throws. */
async function until(ok: () => Promise<boolean>, what: string, limitMs: number, check: () => void = () => {}): Promise<boolean> {
  const end = now() + limitMs;
  for (;;) {
    check();
    if (await ok()) return true;
    if (now() > end) return false;
    await sleep(50);
  }
}

const exitedCheck = (proc: Proc, what: string) => () => {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) throw new Error(`${what} exited (${proc.child.exitCode ?? proc.child.signalCode}):\n${proc.output()}`);
};

async function workerRunning(db: pg.Client, proc: Proc): Promise<void> {
  const up = await until(
    async () => (await db.query("SELECT EXISTS (SELECT 1 FROM steadytext_workers WHERE status = 'running') AS up")).rows[0].up,
    'worker',
    60_000,
    exitedCheck(proc, 'steadytext worker'),
  );
  if (!up) throw new Error(`steadytext worker did not register within 60 s\n${proc.output()}`);
}

// ------------------------------------------------------------------ systems

/**
 * The physical limit: batch-size rows a statement, the no-op engine's vector
 * precomputed, one session (BENCH_BACKFILL_BARE_SESSIONS: several, taking the
 * next batch in turn; their commits overlap their WAL flushes).
 */
async function bare(url: string, db: pg.Client, o: BackfillOptions, sessions: number, progress: Progress, binary = false) {
  const vector = benchVector(o.dimensions);
  const literal = arrayLiteral(vector);
  const sql = binary
    ? `UPDATE documents AS d SET embedding = ($2::real[])[(u.n - 1) * ${o.dimensions} + 1 : u.n * ${o.dimensions}]
       FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, n) WHERE d.id = u.id`
    : 'UPDATE documents AS d SET embedding = u.v::real[] FROM unnest($1::bigint[], $2::text[]) AS u(id, v) WHERE d.id = u.id';
  const clients = await Promise.all(Array.from({ length: sessions }, () => connect(url)));
  try {
    return await timed(db, undefined, async () => {
      let next = 1;
      let done = 0;
      await Promise.all(
        clients.map(async (c) => {
          while (next <= o.rows) {
            const first = next;
            next += o.batchSize;
            const ids = Array.from({ length: Math.min(o.batchSize, o.rows - first + 1) }, (_, i) => first + i);
            // binary: built per statement, as the worker builds each batch's
            await c.query(sql, [ids, binary ? binaryRealArray(ids.map(() => vector)) : ids.map(() => literal)]);
            done += ids.length;
            if (Math.random() < 0.05) progress('backfill bare UPDATE', done, o.rows);
          }
        }),
      );
    });
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

const pipelineStatus = async (db: pg.Client, name: string) =>
  (
    await db.query<{ rows: string; done: string; pending: string; processing: string; failed: string; last_error: string | null }>(
      'SELECT rows, done, pending, processing, failed, last_error FROM steadytext_pipeline_status($1)',
      [name],
    )
  ).rows[0];

/** Creates pipeline `name` over documents.content → embedding and waits until it reports every row done. */
async function runPipeline(db: pg.Client, name: string, rows: number, batchSize: number, capSeconds: number, proc: Proc, progress?: Progress, label = '') {
  // The end is seen without polling the CPU away from the worker and the
  // engine: a statement trigger on the table notifies once per statement that
  // updates it (a batch's write: one trigger call and one NOTIFY a batch), and
  // the bench looks (an index probe, and one for rows in flight) only when one
  // came; the status call (it counts rows, and grows with the table) when
  // nothing is left, and for progress and failures once a second (or 1/20 of
  // the time, if it takes longer).
  await db.query(`CREATE OR REPLACE FUNCTION bench_batch_written() RETURNS trigger LANGUAGE plpgsql
                  AS $$ BEGIN PERFORM pg_notify('bench_batch', ''); RETURN NULL; END $$`);
  await db.query('DROP TRIGGER IF EXISTS bench_batch_written ON documents');
  await db.query('CREATE TRIGGER bench_batch_written AFTER UPDATE ON documents FOR EACH STATEMENT EXECUTE FUNCTION bench_batch_written()');
  let written = true;
  let wake: (() => void) | undefined;
  const onWritten = (n: pg.Notification) => {
    if (n.channel !== 'bench_batch') return;
    written = true;
    wake?.();
  };
  db.on('notification', onWritten);
  await db.query('LISTEN bench_batch');
  const check = exitedCheck(proc, 'steadytext worker');
  let every = 1000;
  let statusAt = 0;
  let maxProcessing = 0;
  const limit = now() + capSeconds * 1000;
  try {
    await db.query(`SELECT steadytext_pipeline_create($1, 'documents', 'content', 'embedding', 'embed', '{}', 0, false, $2)`, [name, batchSize]);
    for (;;) {
      check();
      if (now() >= statusAt + every) {
        const t = now();
        const s = await pipelineStatus(db, name);
        statusAt = now();
        every = Math.max(1000, 20 * (now() - t));
        if (!s) throw new Error(`steadytext_pipeline_status('${name}') returned no row`);
        if (Number(s.failed) > 0) {
          const f = await db.query('SELECT row_key, error FROM steadytext_pipeline_failures($1) LIMIT 3', [name]);
          throw new Error(`pipeline ${name}: ${s.failed} rows failed, e.g. ${JSON.stringify(f.rows)}; last_error ${s.last_error}`);
        }
        if (progress) progress(label, Number(s.done), rows);
        maxProcessing = Math.max(maxProcessing, Number(s.processing));
        if (Number(s.done) >= rows && Number(s.rows) === rows && Number(s.pending) === 0 && Number(s.processing) === 0) return { capped: false, maxProcessing };
      } else if (written) {
        written = false;
        const left = await db.query<{ waiting: boolean }>(
          `SELECT p.scanning OR EXISTS (SELECT 1 FROM steadytext_pipeline_rows AS r WHERE r.pipeline_id = p.pipeline_id AND r.status = 'pending')
                  OR EXISTS (SELECT 1 FROM steadytext_pipeline_rows AS r WHERE r.pipeline_id = p.pipeline_id AND r.status = 'processing') AS waiting
           FROM steadytext_pipelines AS p WHERE p.name = $1`,
          [name],
        );
        if (left.rows[0] && !left.rows[0].waiting) statusAt = 0; // nothing left: confirm with the status
        continue;
      }
      if (now() > limit) return { capped: true, maxProcessing };
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, statusAt + every - now()));
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    db.off('notification', onWritten);
    await db.query('UNLISTEN bench_batch');
    await db.query('DROP TRIGGER IF EXISTS bench_batch_written ON documents');
  }
}

async function pipeline(db: pg.Client, o: BackfillOptions, proc: Proc, progress: Progress) {
  return timed(db, proc.child.pid, () => runPipeline(db, 'backfill', o.rows, o.batchSize, o.capSeconds, proc, progress, 'backfill pipeline'));
}

/** The spec's pattern: enqueue a job per row (batch-size rows a transaction) beside a loop of process_completed_embeddings(). */
async function pattern(url: string, db: pg.Client, o: BackfillOptions, proc: Proc, progress: Progress) {
  await db.query('CREATE TABLE embedding_requests (doc_id bigint PRIMARY KEY, request_id uuid NOT NULL UNIQUE)');
  await db.query(`
    CREATE FUNCTION process_completed_embeddings() RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE n bigint;
    BEGIN
      WITH done AS (
        DELETE FROM embedding_requests r USING steadytext_queue q
        WHERE q.request_id = r.request_id AND q.status = 'completed'
        RETURNING r.doc_id, r.request_id)
      UPDATE documents d
         SET embedding = translate(steadytext_get_async_result(done.request_id), '[]', '{}')::real[]
        FROM done WHERE d.id = done.doc_id;
      GET DIAGNOSTICS n = ROW_COUNT;
      RETURN n;
    END $$`);
  const loop = await connect(url);
  try {
    return await timed(db, proc.child.pid, async () => {
      const t0 = now();
      const end = t0 + o.patternCapSeconds * 1000;
      let enqueued = false;
      let stop = false;
      let enqueueSeconds = 0;
      let done = 0;
      const check = exitedCheck(proc, 'steadytext worker');
      const enqueue = (async () => {
        try {
          for (let first = 1; first <= o.rows && !stop; first += o.batchSize) {
            await db.query(
              `INSERT INTO embedding_requests (doc_id, request_id)
               SELECT id, steadytext_embed_async(content, use_cache => false) FROM documents
               WHERE embedding IS NULL AND id BETWEEN $1 AND $2`,
              [first, first + o.batchSize - 1],
            );
          }
          enqueueSeconds = (now() - t0) / 1000;
          enqueued = true;
        } finally {
          stop ||= !enqueued;
        }
      })();
      const processing = (async () => {
        try {
          for (;;) {
            check();
            const n = Number((await loop.query<{ n: string }>('SELECT process_completed_embeddings() AS n')).rows[0].n);
            done += n;
            if (Math.random() < 0.1) progress('backfill spec pattern', done, o.rows);
            if (stop || (enqueued && done >= o.rows) || now() > end) return;
            if (n === 0) await sleep(10);
          }
        } finally {
          stop = true;
        }
      })();
      const settled = await Promise.allSettled([enqueue, processing]);
      for (const x of settled) if (x.status === 'rejected') throw x.reason;
      return { capped: done < o.rows, enqueueSeconds: round(enqueueSeconds) };
    });
  } finally {
    await loop.end();
  }
}

async function graphile(db: pg.Client, o: BackfillOptions, proc: Proc, progress: Progress) {
  return timed(db, proc.child.pid, async () => {
    await db.query(
      `SELECT graphile_worker.add_jobs(array(
         SELECT ROW('embed_rows', json_agg(json_build_object('id', id) ORDER BY id), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
         FROM documents WHERE embedding IS NULL GROUP BY (id - 1) / $1::int ORDER BY min(id)))`,
      [o.batchSize],
    );
    let tick = 0;
    const finished = await until(
      async () => {
        const left = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM graphile_worker._private_jobs')).rows[0].n);
        if (tick++ % 10 === 0) progress('backfill graphile-worker', o.rows - left * o.batchSize, o.rows);
        return left === 0;
      },
      'graphile-worker',
      o.capSeconds * 1000,
      exitedCheck(proc, 'graphile-worker'),
    );
    return { capped: !finished };
  });
}

// ------------------------------------------------------------------ sync lag

/** One input change at a time on the pipeline's table; the worker (spawned with BENCH_REPORT_JOBS=1) reports each engine call. */
async function syncLag(url: string, db: pg.Client, rows: number, samples: number, proc: Proc, progress: Progress): Promise<SyncLag> {
  await db.query(`
    CREATE FUNCTION bench_written() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('bench_written', NEW.id::text); RETURN NULL; END $$`);
  await db.query('CREATE TRIGGER bench_written AFTER UPDATE OF embedding ON documents FOR EACH ROW EXECUTE FUNCTION bench_written()');
  const listener = await connect(url);
  const seen = new Map<string, number>();
  const started = new Map<string, number>();
  const waiters = new Map<string, () => void>();
  listener.on('notification', (n) => {
    seen.set('w:' + n.payload, now());
    waiters.get('w:' + n.payload)?.();
  });
  const onMessage = (m: { id?: string; start?: number }) => {
    if (m.id === undefined || m.start === undefined) return;
    started.set('s:' + m.id, m.start);
    waiters.get('s:' + m.id)?.();
  };
  proc.messages.on('message', onMessage);
  const wait = (key: string, map: Map<string, number>, ms: number) =>
    map.has(key)
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => {
            waiters.delete(key);
            reject(new Error(`sync lag: ${key} did not arrive within ${ms} ms\n${proc.output()}`));
          }, ms);
          waiters.set(key, () => {
            clearTimeout(t);
            waiters.delete(key);
            resolve();
          });
        });
  const toWritten: number[] = [];
  const toStart: number[] = [];
  try {
    await listener.query('LISTEN bench_written');
    const warm = 20;
    for (let i = 0; i < warm + samples; i++) {
      const id = String(1 + ((i * 7919) % rows));
      const content = `lag sample ${i}: the quick brown fox jumps over the lazy dog near the river bank`;
      seen.delete('w:' + id);
      await db.query('UPDATE documents SET content = $1 WHERE id = $2', [content, id]);
      const committed = now();
      await wait('w:' + id, seen, 30_000);
      await wait('s:' + content, started, 30_000);
      if (i < warm) continue;
      toWritten.push(seen.get('w:' + id)! - committed);
      toStart.push(started.get('s:' + content)! - committed);
      if (i % 10 === 0) progress('backfill sync lag', i - warm, samples);
    }
  } finally {
    proc.messages.off('message', onMessage);
    await listener.end();
  }
  return { samples, changeToWritten: dist(toWritten), changeToStart: dist(toStart) };
}

// ------------------------------------------------------------------ tiny model

async function tinyModel(url: string, o: BackfillOptions, progress: Progress, say: (line: string) => void): Promise<TinyBackfill> {
  const parallel = 2;
  const st = steadytext(url);
  await st.setup();
  const db = await connect(url);
  setPostmaster((await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid);
  if (TRACE) await traceSetup(db, 'bench_backfill_tiny');
  await makeDocuments(db, 0);
  const engine = await loadEngine({ models: 'tiny', modulePath: undefined, parallel });
  const proc = st.spawn({
    concurrency: o.concurrency,
    engineModule: null,
    env: {
      STEADYTEXT_MODELS: 'tiny',
      STEADYTEXT_ENGINE_PARALLEL: String(parallel),
      STEADYTEXT_WORKER_PIPELINE_BATCH_SIZE: String(o.tinyBatchSize),
      STEADYTEXT_WORKER_LOG_LEVEL: 'info',
    },
  });
  const B = o.tinyBatchSize;
  const runs: TinyRun[] = [];
  let k = 0;
  const pipelineRun = async (inputs: string[], label?: string) => {
    await db.query('SELECT steadytext_pipeline_drop(name) FROM steadytext_pipeline_status()');
    await db.query('TRUNCATE documents');
    await db.query('INSERT INTO documents (id, content) SELECT i, t FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i)', [inputs]);
    await db.query('ANALYZE documents');
    const t0 = now();
    const r = await runPipeline(db, `tiny_${k++}`, inputs.length, B, o.capSeconds, proc, label ? progress : undefined, label);
    if (r.capped) throw new Error(`tiny-model pipeline: not done within ${o.capSeconds} s`);
    return (now() - t0) / 1000;
  };
  try {
    await workerRunning(db, proc);
    // warm-up, off the clock: model load and contexts on both sides
    const warm = texts(B * 2, 'warm');
    await engineLoop(engine, 'embed', B, warm, 1, () => 0);
    await pipelineRun(warm);
    if (TRACE) await db.query('SELECT pg_stat_statements_reset()');
    say(`backfill tiny model: ${o.pairs} pairs of ${o.tinyRows} rows, batch ${B} (≥ ${o.minSeconds} s each)`);
    const paired = await interleave(
      o.pairs,
      ['direct', 'pipeline'] as const,
      o.tinyRows,
      o.minSeconds,
      async (side, pair, rows) => {
        const inputs = texts(rows, `tiny ${pair} ${rows}`);
        const label = `backfill tiny pair ${pair + 1}/${o.pairs} ${side}`;
        progress(label, pair, o.pairs);
        const before = cpuSnapshot(proc.child.pid!);
        const seconds = side === 'direct' ? (await engineLoop(engine, 'embed', B, inputs, 1, () => 0)).seconds : await pipelineRun(inputs, label);
        const cpu = cpuUsed(before, cpuSnapshot(proc.child.pid!));
        const sum = (x: Record<string, number>) => Object.values(x).reduce((a, b) => a + b, 0);
        const per1k = (x: number) => round((x * 1e6) / rows, 1);
        const run: TinyRun = {
          side,
          pair,
          rows,
          seconds: round(seconds),
          rowsPerSecond: round(rows / seconds, 1),
          cpuMsPer1kRows: { postgres: per1k(cpu.postgresS), worker: per1k(sum(cpu.worker)), bench: per1k(sum(cpu.bench)) },
        };
        runs.push(run);
        return run;
      },
      (n, factor) => sizeFor(n * factor, 1, B),
    );
    if (TRACE) for (const t of await traceTake(db, o.pairs * paired.size)) say(`  ${t.totalMs} ms ${t.calls} calls ${t.usPerRow} µs/row: ${t.query}`);
    const counted = new Set([...paired.results.direct, ...paired.results.pipeline]);
    for (const r of runs) if (!counted.has(r)) r.redone = true;
    const d = paired.results.direct.map((r) => r.rowsPerSecond);
    const p = paired.results.pipeline.map((r) => r.rowsPerSecond);
    return {
      rows: paired.size,
      batchSize: B,
      parallel,
      pairs: o.pairs,
      minSeconds: o.minSeconds,
      redone: paired.redone,
      shortestSeconds: Math.min(...[...counted].map((r) => r.seconds)),
      direct: spread(d, 1),
      pipeline: spread(p, 1),
      ratio: spread(p.map((x, i) => x / d[i])),
      cpuMsPer1kRows: {
        direct: spread(paired.results.direct.map((r) => r.cpuMsPer1kRows.postgres + r.cpuMsPer1kRows.worker + r.cpuMsPer1kRows.bench), 1),
        pipeline: spread(paired.results.pipeline.map((r) => r.cpuMsPer1kRows.postgres + r.cpuMsPer1kRows.worker + r.cpuMsPer1kRows.bench), 1),
      },
      runs,
    };
  } finally {
    await proc.stop();
    await engine.dispose();
    await db.end();
  }
}

// ------------------------------------------------------------------ the scenario

export async function backfillScenario(dbs: Databases, o: BackfillOptions, progress: Progress, say: (line: string) => void): Promise<BackfillResult> {
  const result: BackfillResult = {
    rows: o.rows,
    dimensions: o.dimensions,
    batchSize: o.batchSize,
    concurrency: o.concurrency,
    destinationType: 'real[]',
    bareSessions: o.bareSessions,
    capSeconds: o.capSeconds,
    patternCapSeconds: o.patternCapSeconds,
    runs: [],
  };
  // the worker's own cap on a pipeline batch (STEADYTEXT_WORKER_PIPELINE_BATCH_SIZE, default 32) set to the batch size
  const engineEnv = { BENCH_EMBED_DIMENSIONS: String(o.dimensions), STEADYTEXT_WORKER_PIPELINE_BATCH_SIZE: String(o.batchSize) };
  for (const system of o.systems) {
    const name = `bench_backfill_${system.replace('-', '_')}`;
    const url = await dbs.create(name);
    const db = await connect(url);
    let proc: Proc | undefined;
    try {
      setPostmaster((await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid);
      if (TRACE) await traceSetup(db, name);
      if (system === 'pipeline' || system === 'pattern') await steadytext(url).setup();
      if (system === 'graphile') await runMigrations({ connectionString: url, logger: new GraphileLogger(() => () => {}) });
      await makeDocuments(db, o.rows, progress, `backfill ${system}: filling ${o.rows} rows`);
      if (system === 'pipeline' || system === 'pattern') {
        proc = steadytext(url).spawn({ concurrency: o.concurrency, env: { ...engineEnv, ...(system === 'pipeline' && o.lag ? { BENCH_REPORT_JOBS: '1' } : {}) } });
        await workerRunning(db, proc);
      } else if (system === 'graphile') {
        proc = spawnTs(GRAPHILE_BACKFILL_RUNNER, [url, String(o.concurrency)], engineEnv);
        const p = proc;
        const ready = new Promise<void>((resolve) => p.messages.on('message', (m: { ready?: boolean }) => m.ready && resolve()));
        const ok = await Promise.race([ready.then(() => true), sleep(60_000).then(() => false)]);
        if (!ok) throw new Error(`graphile-worker did not start within 60 s\n${proc.output()}`);
      }
      if (TRACE) await db.query('SELECT pg_stat_statements_reset()');
      const r =
        system === 'bare' || system === 'bare-binary'
          ? await bare(url, db, o, o.bareSessions, progress, system === 'bare-binary')
          : system === 'pipeline'
            ? await pipeline(db, o, proc!, progress)
            : system === 'pattern'
              ? await pattern(url, db, o, proc!, progress)
              : await graphile(db, o, proc!, progress);
      const n = await written(db);
      if (n < o.rows && !('capped' in r && r.capped)) throw new Error(`${system}: ${o.rows - n} rows without a vector at the end`);
      const run: BackfillRun = {
        system,
        how: HOW[system],
        rows: o.rows,
        written: n,
        seconds: round(r.seconds),
        rowsPerSecond: round(n / r.seconds, 1),
        walBytes: r.walBytes,
        walBytesPerRow: round(r.walBytes / Math.max(n, 1), 1),
        checkpointInside: r.checkpointInside,
        capped: n < o.rows,
        cpuMsPer1kRows: {
          postgres: round((r.cpu.postgresS * 1e6) / Math.max(n, 1), 1),
          worker: round((r.cpu.workerS * 1e6) / Math.max(n, 1), 1),
          bench: round((r.cpu.benchS * 1e6) / Math.max(n, 1), 1),
        },
        machineBusy: round(r.cpu.busy, 3),
        ...(TRACE ? { statements: await traceTake(db, n) } : {}),
        ...('enqueueSeconds' in r && r.enqueueSeconds !== undefined ? { enqueueSeconds: r.enqueueSeconds } : {}),
        ...('maxProcessing' in r && r.maxProcessing !== undefined ? { maxProcessing: r.maxProcessing } : {}),
      };
      result.runs.push(run);
      say(
        `backfill ${system}: ${run.rowsPerSecond} rows/s (${n} rows in ${run.seconds} s${run.capped ? ', time-capped' : ''}), ` +
          `${run.walBytesPerRow} WAL bytes/row${run.checkpointInside ? ', a checkpoint began inside' : ''}`,
      );
      if (system === 'pipeline' && o.lag) {
        result.lag = await syncLag(url, db, o.rows, o.lagSamples, proc!, progress);
        say(`backfill sync lag: change → written p50 ${result.lag.changeToWritten.p50} ms p99 ${result.lag.changeToWritten.p99} ms; change → engine call p50 ${result.lag.changeToStart.p50} ms`);
      }
    } finally {
      await proc?.stop();
      await db.end();
      await dbs.drop(name);
    }
  }
  if (o.tiny) {
    const name = 'bench_backfill_tiny';
    try {
      result.tiny = await tinyModel(await dbs.create(name), o, progress, say);
      const t = result.tiny;
      say(`backfill tiny model: pipeline/direct ${t.ratio.median} (${t.ratio.min}–${t.ratio.max}); direct ${t.direct.median} rows/s, pipeline ${t.pipeline.median}`);
    } finally {
      await dbs.drop(name);
    }
  }
  return result;
}
