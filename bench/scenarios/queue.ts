// Scenarios 1-3: enqueue rate, no-op burn-down, start/notify latency.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { dist, now, round, sleep, type Dist } from '../lib/stats.ts';
import type { Proc } from '../lib/proc.ts';
import type { QueueSystem } from '../lib/systems.ts';

export interface Progress {
  (label: string, done: number, total: number): void;
}

async function withClient<T>(url: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

// ---------------------------------------------------------------- 1. enqueue

export interface EnqueueResult {
  system: string;
  mode: 'single' | 'batch';
  how: string;
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  /** Stopped at the time cap before all `jobs` were enqueued. */
  capped: boolean;
}

/** Enqueues `jobs` no-op jobs each way; a run past `capSeconds` stops early and counts what it enqueued. */
export async function enqueueRate(sys: QueueSystem, jobs: number, capSeconds: number, progress: Progress): Promise<EnqueueResult[]> {
  return withClient(sys.url, async (db) => {
    const out: EnqueueResult[] = [];
    for (const mode of ['single', 'batch'] as const) {
      await sys.reset(db);
      // warm-up: 1% of the jobs, same path
      const warm = Math.max(100, Math.floor(jobs / 100));
      if (mode === 'single') await sys.enqueueSingle(db, warm, 1000);
      else await sys.enqueueBatch(db, warm, 1000);
      await sys.reset(db);
      await db.query('CHECKPOINT');
      const chunk = mode === 'single' ? 1000 : 10_000;
      const step = chunk * 2;
      const t0 = now();
      let enqueued = 0;
      while (enqueued < jobs && now() - t0 < capSeconds * 1000) {
        const k = Math.min(step, jobs - enqueued);
        if (mode === 'single') await sys.enqueueSingle(db, k, chunk);
        else await sys.enqueueBatch(db, k, chunk);
        enqueued += k;
        progress(`enqueue ${mode} ${sys.name}`, enqueued, jobs);
      }
      const seconds = (now() - t0) / 1000;
      out.push({
        system: sys.name,
        mode,
        how: mode === 'single' ? sys.singleHow : sys.batchHow,
        jobs: enqueued,
        seconds: round(seconds),
        jobsPerSecond: round(enqueued / seconds, 1),
        capped: enqueued < jobs,
      });
      await sys.reset(db);
    }
    return out;
  });
}

// ---------------------------------------------------------------- 2. burn-down

export interface BurnDownResult {
  system: string;
  processes: number;
  concurrencyPerProcess: number;
  jobs: number;
  finished: number;
  seconds: number;
  jobsPerSecond: number;
  /** The run hit the time cap before the queue drained; rate = finished / elapsed. */
  capped: boolean;
}

/**
 * `jobs` no-op jobs pre-enqueued; `processes` worker processes started; the
 * clock runs from the first job any process starts (each writes its first
 * start time to a file) until the queue is seen drained (polled every 50 ms)
 * or `capSeconds` pass.
 */
export async function burnDown(
  sys: QueueSystem,
  opts: { jobs: number; processes: number; concurrency: number; capSeconds: number },
  progress: Progress,
): Promise<BurnDownResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-first-'));
  return withClient(sys.url, async (db) => {
    await sys.reset(db);
    await sys.enqueueBatch(db, opts.jobs, 10_000);
    await db.query('VACUUM ANALYZE');
    await db.query('CHECKPOINT');
    const files = Array.from({ length: opts.processes }, (_, i) => path.join(dir, `first-${i}`));
    const procs: Proc[] = files.map((f) =>
      sys.spawn({ concurrency: opts.concurrency, env: { BENCH_FIRST_FILE: f } }),
    );
    const label = `burn-down ${sys.name} x${opts.processes}`;
    let drainedAt = 0;
    let firstSeenAt = 0;
    const deadline = () => (firstSeenAt ? firstSeenAt + opts.capSeconds * 1000 : Infinity);
    const startBy = now() + 60_000;
    try {
      for (;;) {
        await sleep(50);
        if (!firstSeenAt && files.some((f) => existsSync(f))) firstSeenAt = now();
        if (!firstSeenAt && now() > startBy) {
          throw new Error(`${sys.name}: no job started within 60 s\n${procs.map((p) => p.output()).join('\n')}`);
        }
        for (const p of procs) {
          if (p.child.exitCode !== null) throw new Error(`${sys.name} worker exited (${p.child.exitCode}):\n${p.output()}`);
        }
        if (firstSeenAt && (await sys.drained(db))) {
          drainedAt = now();
          break;
        }
        if (now() > deadline()) break;
        if (firstSeenAt && Math.random() < 0.1) {
          progress(label, await sys.finished(db, opts.jobs), opts.jobs);
        }
      }
    } finally {
      await Promise.all(procs.map((p) => p.stop()));
    }
    const end = drainedAt || now();
    const starts = files.filter((f) => existsSync(f)).map((f) => Number(readFileSync(f, 'utf8')));
    rmSync(dir, { recursive: true, force: true });
    const start = Math.min(...starts);
    const finished = drainedAt ? opts.jobs : await sys.finished(db, opts.jobs);
    progress(label, finished, opts.jobs);
    const seconds = (end - start) / 1000;
    await sys.reset(db);
    return {
      system: sys.name,
      processes: opts.processes,
      concurrencyPerProcess: opts.concurrency,
      jobs: opts.jobs,
      finished,
      seconds: round(seconds),
      jobsPerSecond: round(finished / seconds, 1),
      capped: !drainedAt,
    };
  });
}

// ---------------------------------------------------------------- 3. latency

export interface LatencyResult {
  system: string;
  samples: number;
  /** enqueue call returned (commit acknowledged) → the task/engine call began, ms */
  start: Dist;
  /** engine call returned → steadytext_completed NOTIFY received by a listener, ms (pg-steadytext only) */
  completeNotify?: Dist;
  /** enqueue call returned → completion NOTIFY received, ms (pg-steadytext only) */
  roundTrip?: Dist;
}

/**
 * `samples` jobs one after another (the next is enqueued once the previous
 * one has finished), one worker process with concurrency 1, after 20 warm-up
 * jobs. Times are high-resolution epoch ms taken in each process
 * (performance.timeOrigin + performance.now(), one clock on one machine).
 */
export async function latency(sys: QueueSystem, samples: number, progress: Progress): Promise<LatencyResult> {
  const isSteadytext = sys.name === 'pg-steadytext';
  return withClient(sys.url, async (db) => {
    await sys.reset(db);
    const listener = new pg.Client({ connectionString: sys.url });
    await listener.connect();
    const notified = new Map<string, number>();
    const waiters = new Map<string, () => void>();
    if (isSteadytext) {
      listener.on('notification', (n) => {
        const t = now();
        const id = (JSON.parse(n.payload ?? '{}') as { request_id?: string }).request_id ?? '';
        notified.set(id, t);
        waiters.get('n:' + id)?.();
      });
      await listener.query('LISTEN steadytext_completed');
    }
    const proc = sys.spawn({ concurrency: 1, env: { BENCH_REPORT_JOBS: '1' } });
    const ran = new Map<string, { start: number; end: number }>();
    proc.messages.on('message', (m: { id?: string; start?: number; end?: number }) => {
      if (m.id === undefined || m.start === undefined) return;
      ran.set(m.id, { start: m.start, end: m.end! });
      waiters.get('r:' + m.id)?.();
    });
    const waitFor = (key: string, has: () => boolean, ms: number) =>
      has()
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const t = setTimeout(() => {
              waiters.delete(key);
              reject(new Error(`${sys.name}: ${key} did not arrive within ${ms} ms\n${proc.output()}`));
            }, ms);
            waiters.set(key, () => {
              clearTimeout(t);
              waiters.delete(key);
              resolve();
            });
          });
    const startMs: number[] = [];
    const notifyMs: number[] = [];
    const roundMs: number[] = [];
    try {
      const warm = 20;
      for (let i = 0; i < warm + samples; i++) {
        const id = `lat-${i}`;
        const key = await sys.enqueueOne(db, id);
        const committed = now();
        await waitFor('r:' + id, () => ran.has(id), 90_000);
        if (isSteadytext) await waitFor('n:' + key, () => notified.has(key), 30_000);
        if (i < warm) continue;
        const r = ran.get(id)!;
        startMs.push(r.start - committed);
        if (isSteadytext) {
          notifyMs.push(notified.get(key)! - r.end);
          roundMs.push(notified.get(key)! - committed);
        }
        if (i % 10 === 0) progress(`latency ${sys.name}`, i - warm, samples);
      }
    } finally {
      await proc.stop();
      await listener.end();
    }
    progress(`latency ${sys.name}`, samples, samples);
    await sys.reset(db);
    return {
      system: sys.name,
      samples,
      start: dist(startMs),
      ...(isSteadytext ? { completeNotify: dist(notifyMs), roundTrip: dist(roundMs) } : {}),
    };
  });
}
