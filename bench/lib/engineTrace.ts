// Opt-in tracing for the engine scenario (BENCH_ENGINE_TRACE=1): where a
// timed run's wall time went. Two sources, both read from outside the code
// under test:
//
// - every engine call's start, end and size (texts per embed call), recorded
//   by a wrapper around the real engine: in this process for the direct loop,
//   in the worker through bench/tracedEngine.ts (its calls come back over the
//   worker's IPC channel). From them: time with no engine call in flight
//   (head: before the first call; gaps; tail: after the last one), and the
//   calls and texts in flight on average.
// - CPU seconds from /proc, per thread: this process and the worker (its main
//   JavaScript thread apart from the rest: llama.cpp, libuv and V8 helpers),
//   the bench's PostgreSQL (postmaster and its backends), and the whole
//   machine (its busy and idle time: on a shared machine others run too).
// - the queue's statements during a queue run (pg_stat_statements, loaded
//   only in a traced run): calls, rows and server time of the enqueue, the
//   claims, the start marks and the completions.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { Engine } from '../../src/engine/types.ts';
import { now, round } from './stats.ts';

export const TRACED_ENGINE = path.join(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'), 'tracedEngine.ts');

export interface EngineCall {
  /** High-resolution epoch ms. */
  start: number;
  end: number;
  /** Texts in the call (embed), 1 for a generate call. */
  n: number;
}

/** The engine with its embed and generate calls recorded; take() hands over the calls so far and forgets them. */
export function traceEngine(inner: Engine): { engine: Engine; take(): EngineCall[] } {
  let calls: EngineCall[] = [];
  const timed =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>, size: (...a: A) => number) =>
    async (...a: A): Promise<R> => {
      const start = now();
      try {
        return await f(...a);
      } finally {
        calls.push({ start, end: now(), n: size(...a) });
      }
    };
  const one = (..._: unknown[]) => 1;
  const own: Partial<Engine> = {
    embed: timed(inner.embed.bind(inner), (texts) => texts.length),
    generate: timed(inner.generate.bind(inner), one),
    generateJson: timed(inner.generateJson.bind(inner), one),
    generateRegex: timed(inner.generateRegex.bind(inner), one),
    generateChoice: timed(inner.generateChoice.bind(inner), one),
  };
  const engine = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop in own) return own[prop as keyof Engine];
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    engine,
    take() {
      const out = calls;
      calls = [];
      return out;
    },
  };
}

export interface TraceSummary {
  calls: number;
  /** Texts per engine call: mean, min, max. */
  perCall: { mean: number; min: number; max: number };
  /** Time-averaged engine calls in flight, and texts in flight, over the run's wall time. */
  callsInFlight: number;
  textsInFlight: number;
  /** ms with no engine call in flight: before the first, between calls (count, total, longest), after the last. */
  headMs: number;
  gaps: { count: number; totalMs: number; longestMs: number };
  tailMs: number;
  /** Share of the wall time with at least one engine call in flight. */
  busy: number;
}

/** Sums up the calls of one run that lasted from t0 to t1 (epoch ms). */
export function traceSummary(calls: EngineCall[], t0: number, t1: number): TraceSummary {
  const wall = t1 - t0;
  const cs = [...calls].sort((a, b) => a.start - b.start);
  let busyMs = 0;
  let gapCount = 0;
  let gapMs = 0;
  let longest = 0;
  let reach = -Infinity;
  for (const c of cs) {
    if (c.start > reach) {
      if (reach !== -Infinity) {
        gapCount++;
        gapMs += c.start - reach;
        longest = Math.max(longest, c.start - reach);
      }
      busyMs += c.end - c.start;
      reach = c.end;
    } else if (c.end > reach) {
      busyMs += c.end - reach;
      reach = c.end;
    }
  }
  const sizes = cs.map((c) => c.n);
  return {
    calls: cs.length,
    perCall: {
      mean: round(sizes.reduce((a, b) => a + b, 0) / Math.max(1, sizes.length), 1),
      min: sizes.length ? Math.min(...sizes) : 0,
      max: sizes.length ? Math.max(...sizes) : 0,
    },
    callsInFlight: round(cs.reduce((a, c) => a + (c.end - c.start), 0) / wall, 2),
    textsInFlight: round(cs.reduce((a, c) => a + c.n * (c.end - c.start), 0) / wall, 2),
    headMs: round(cs.length ? Math.max(0, cs[0].start - t0) : wall, 1),
    gaps: { count: gapCount, totalMs: round(gapMs, 1), longestMs: round(longest, 1) },
    tailMs: round(cs.length ? Math.max(0, t1 - reach) : 0, 1),
    busy: round(busyMs / wall, 3),
  };
}

// ---------------------------------------------------------------- CPU from /proc

const TICK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** [ppid, utime, stime, cutime, cstime] (ticks) of /proc/<pid>[/task/<tid>]/stat; undefined if gone. */
function stat(file: string): number[] | undefined {
  try {
    const s = readFileSync(file, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return [Number(f[1]), Number(f[11]), Number(f[12]), Number(f[13]), Number(f[14])];
  } catch {
    return undefined;
  }
}

const comm = (file: string) => {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '?';
  }
};

/** CPU ticks of a process's threads: its main thread, and the others grouped by thread name. */
function threads(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const s = stat(`/proc/${pid}/task/${tid}/stat`);
    if (!s) continue;
    const name = Number(tid) === pid ? 'main' : comm(`/proc/${pid}/task/${tid}/comm`);
    out[name] = (out[name] ?? 0) + s[1] + s[2];
  }
  return out;
}

/** CPU ticks of a postmaster and its children (live ones, plus those it reaped). */
function postgresTicks(postmaster: number): number {
  const own = stat(`/proc/${postmaster}/stat`);
  let ticks = own ? own[1] + own[2] + own[3] + own[4] : 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = stat(`/proc/${d}/stat`);
    if (s && s[0] === postmaster) ticks += s[1] + s[2];
  }
  return ticks;
}

export interface CpuSnapshot {
  at: number;
  machine: { busy: number; idle: number };
  bench: Record<string, number>;
  worker: Record<string, number>;
  postgres: number;
}

let postmasterPid: number | undefined;

/** The postmaster's pid, from one backend's parent (call once with a connected client's backend pid). */
export function setPostmaster(backendPid: number): void {
  postmasterPid = stat(`/proc/${backendPid}/stat`)?.[0];
}

export function cpuSnapshot(workerPid: number): CpuSnapshot {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = cpu[3] + cpu[4];
  const busy = cpu.slice(0, 8).reduce((a, b) => a + b, 0) - idle;
  return {
    at: now(),
    machine: { busy, idle },
    bench: threads(process.pid),
    worker: threads(workerPid),
    postgres: postmasterPid ? postgresTicks(postmasterPid) : 0,
  };
}

/** CPU seconds used between two snapshots. */
export interface CpuUsed {
  wallS: number;
  /** All cores: busy and idle CPU seconds (anyone's). */
  machineBusyS: number;
  machineIdleS: number;
  /** This process (the direct loop's engine lives here): main thread, others by name. */
  bench: Record<string, number>;
  /** The worker process: main thread (JavaScript: claim, complete, batching), others by name (llama.cpp, libuv, V8). */
  worker: Record<string, number>;
  postgresS: number;
}

export function cpuUsed(a: CpuSnapshot, b: CpuSnapshot): CpuUsed {
  const diff = (x: Record<string, number>, y: Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) {
      const d = ((y[k] ?? 0) - (x[k] ?? 0)) / TICK;
      if (d > 0) out[k] = round(d, 2);
    }
    return out;
  };
  return {
    wallS: round((b.at - a.at) / 1000, 3),
    machineBusyS: round((b.machine.busy - a.machine.busy) / TICK, 2),
    machineIdleS: round((b.machine.idle - a.machine.idle) / TICK, 2),
    bench: diff(a.bench, b.bench),
    worker: diff(a.worker, b.worker),
    postgresS: round((b.postgres - a.postgres) / TICK, 2),
  };
}

// ---------------------------------------------------------------- statements

export type StatementKind = 'enqueue' | 'claim' | 'mark' | 'complete' | 'other';
export type Statements = Record<StatementKind, { calls: number; rows: number; ms: number }>;

/**
 * Which of the worker's statements (src/db/) a pg_stat_statements entry is,
 * by text that survives its normalisation (constants become $n).
 */
function statementKind(query: string): StatementKind {
  if (/_batch_async\(/.test(query)) return 'enqueue';
  if (/attempt = q\.attempt \+ /.test(query)) return 'claim';
  if (/SET started_at = now\(\)/.test(query)) return 'mark';
  if (/completed_at = now\(\)/.test(query)) return 'complete';
  return 'other';
}

export async function statementsReset(db: pg.Client): Promise<void> {
  await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  await db.query('SELECT pg_stat_statements_reset()');
}

/** This database's statements since the last reset, by kind (the bench's own reads and resets under 'other'). */
export async function statements(db: pg.Client): Promise<Statements> {
  const out = Object.fromEntries(
    (['enqueue', 'claim', 'mark', 'complete', 'other'] as const).map((k) => [k, { calls: 0, rows: 0, ms: 0 }]),
  ) as Statements;
  const r = await db.query<{ query: string; calls: string; rows: string; ms: number }>(
    `SELECT query, calls, rows, total_exec_time AS ms FROM pg_stat_statements
     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
  );
  for (const row of r.rows) {
    const o = out[statementKind(row.query)];
    o.calls += Number(row.calls);
    o.rows += Number(row.rows);
    o.ms = round(o.ms + row.ms, 1);
  }
  return out;
}
