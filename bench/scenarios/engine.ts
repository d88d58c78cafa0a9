// Scenario 5: the real engine (llama.cpp) on the tiny test model (STEADYTEXT_MODELS=tiny),
// through the queue (one worker process) versus a plain loop calling the engine
// in this process; and how throughput grows with batch / concurrency.
//
// Method (bench/lib/pairs.ts): per kind and width, a warm-up estimates the
// direct loop's rate and sizes every timed run to last at least `minSeconds`;
// then `pairs` pairs of runs, queue and direct in turns (D Q, Q D, ...), the
// same inputs for both sides of a pair; the ratio queue/direct is taken per
// pair and reported as median and spread.
import pg from 'pg';
import { loadEngine, resolveSettings, type Engine } from '../../src/engine/index.ts';
import { getCpuLlama } from '../../src/engine/llamaEngine.ts';
import { ensureTinyModel } from '../../src/engine/tinyModels.ts';
import { engineLoop, texts } from '../lib/engineLoop.ts';
import { cpuSnapshot, cpuUsed, setPostmaster, statements, statementsReset, traceEngine, type Statements, type StatementKind, traceSummary, TRACED_ENGINE, type CpuUsed, type EngineCall, type TraceSummary } from '../lib/engineTrace.ts';
import { interleave, sizeFor, spread, type Spread } from '../lib/pairs.ts';
import type { Proc } from '../lib/proc.ts';
import { round, now } from '../lib/stats.ts';
import type { QueueSystem } from '../lib/systems.ts';
import type { Progress } from './queue.ts';

type Kind = 'embed' | 'generate';
type Path = 'direct' | 'queue';

export interface EngineRun {
  kind: Kind;
  path: Path;
  /** direct: texts per engine.embed call / generate calls in flight; queue: worker --concurrency */
  width: number;
  /** Pair number (0-based); the two runs of a pair had the same inputs. */
  pair: number;
  items: number;
  tokens?: number;
  seconds: number;
  perSecond: number;
  /** Queue runs: seconds the enqueue statement took (inside `seconds`). */
  enqueueSeconds?: number;
  /** With BENCH_ENGINE_TRACE=1: where the time went (bench/lib/engineTrace.ts); the queue's statements on queue runs. */
  trace?: TraceSummary & { cpu: CpuUsed; statements?: Statements };
  /** Run again with more items (a run of its pair was shorter than minSeconds): not counted. */
  redone?: true;
}

/** One kind at one width: every pair's rates, and the ratio queue/direct per pair. */
export interface EnginePairs {
  kind: Kind;
  width: number;
  /** Items per timed run (sized from the warm-up estimate; the last pair's size, see `redone`). */
  items: number;
  /** Pairs run again with more items because a run of theirs was shorter than minSeconds (not counted). */
  redone: number;
  /** The shortest counted run, seconds. */
  shortestSeconds: number;
  /** The direct loop's rate measured in the warm-up, that sized the runs. */
  estimate: number;
  direct: Spread;
  queue: Spread;
  /** queue rate / direct rate, per pair. */
  ratio: Spread;
  /** direct rate / queue rate − 1, per pair (the targets are written in it). */
  overhead: Spread;
  /** With BENCH_ENGINE_TRACE=1: each side's trace, medians and spreads over the pairs. */
  trace?: Record<Path, SideTrace> & {
    /** CPU seconds of the queue side / of the direct side, per pair (all of this bench's processes and its PostgreSQL). */
    cpuRatio: Spread;
  };
}

/** Where one side's wall time went, over its runs (bench/lib/engineTrace.ts). */
export interface SideTrace {
  /** Share of the wall time with an engine call in flight. */
  busy: Spread;
  /** ms before the first engine call (the queue: enqueue, wake-up, claim) and after the last one (completion, NOTIFY). */
  headMs: Spread;
  tailMs: Spread;
  callsInFlight: Spread;
  textsInFlight: Spread;
  /** Texts per engine call (mean per run). */
  perCall: Spread;
  /**
   * CPU ms per 1,000 items: engine = the engine process's libuv pool threads
   * (where node-llama-cpp evaluates); js = JavaScript threads (the engine
   * process's main thread and V8 helpers, plus this process's main thread on
   * the queue side: the NOTIFY listener); postgres; total.
   */
  cpuMsPer1k: { engine: Spread; js: Spread; postgres: Spread; total: Spread };
  /** Queue side: statements per 1,000 jobs (calls) and their server time (ms per 1,000 jobs), medians over the pairs. */
  statementsPer1k?: Record<Exclude<StatementKind, 'other'>, { calls: number; ms: number }>;
}

export interface EngineResult {
  minSeconds: number;
  pairs: number;
  traced: boolean;
  runs: EngineRun[];
  byWidth: EnginePairs[];
}

export interface EngineOptions {
  widths: number[];
  maxTokens: number;
  /** Each timed run lasts at least this long (sized from the warm-up estimate). */
  minSeconds: number;
  /** Pairs of runs (queue, direct) per kind and width; at least 5. */
  pairs: number;
}

const TRACE = process.env.BENCH_ENGINE_TRACE === '1';

/** One worker process serving one kind at one width, and the connections that feed and watch it. */
class QueueSide {
  private done = new Set<string>();
  private waiting?: { ids: Set<string>; resolve: () => void };

  private constructor(
    readonly sys: QueueSystem,
    readonly kind: Kind,
    readonly width: number,
    readonly maxTokens: number,
    readonly db: pg.Client,
    readonly listener: pg.Client,
    readonly proc: Proc,
  ) {
    listener.on('notification', (n) => {
      const id = (JSON.parse(n.payload ?? '{}') as { request_id: string }).request_id;
      const w = this.waiting;
      if (!w) return void this.done.add(id);
      if (w.ids.delete(id) && w.ids.size === 0) w.resolve();
    });
  }

  static async start(sys: QueueSystem, kind: Kind, width: number, maxTokens: number): Promise<QueueSide> {
    const db = new pg.Client({ connectionString: sys.url });
    await db.connect();
    const listener = new pg.Client({ connectionString: sys.url });
    await listener.connect();
    await listener.query('LISTEN steadytext_completed');
    if (TRACE) setPostmaster((await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    await sys.reset(db);
    const proc = sys.spawn({
      concurrency: width,
      // traced: the real engine behind a wrapper that records each call (bench/tracedEngine.ts)
      engineModule: TRACE ? TRACED_ENGINE : null,
      env: { STEADYTEXT_MODELS: 'tiny', STEADYTEXT_ENGINE_PARALLEL: String(Math.max(2, width)), STEADYTEXT_WORKER_LOG_LEVEL: 'info' },
    });
    return new QueueSide(sys, kind, width, maxTokens, db, listener, proc);
  }

  /** Enqueues `inputs` as one batch and waits for every completion NOTIFY. */
  async run(inputs: string[], count: (t: string) => number, label?: string, progress?: Progress) {
    await this.db.query('TRUNCATE steadytext_queue');
    if (TRACE) await statementsReset(this.db);
    this.done.clear();
    const t0 = now();
    const r =
      this.kind === 'embed'
        ? await this.db.query<{ ids: string[] }>('SELECT steadytext_embed_batch_async($1::text[], use_cache => false) AS ids', [inputs])
        : await this.db.query<{ ids: string[] }>(
            'SELECT steadytext_generate_batch_async($1::text[], max_tokens => $2, use_cache => false) AS ids',
            [inputs, this.maxTokens],
          );
    const enqueued = now();
    const ids = r.rows[0].ids;
    const left = new Set(ids.filter((id) => !this.done.has(id)));
    if (left.size > 0) {
      const limitS = Number(process.env.BENCH_ENGINE_TIMEOUT ?? 300);
      const all = new Promise<void>((resolve) => (this.waiting = { ids: left, resolve }));
      const tick = setInterval(() => label && progress?.(label, ids.length - left.size, ids.length), 250);
      let timer: NodeJS.Timeout | undefined;
      let exited: (() => void) | undefined;
      try {
        await Promise.race([
          all,
          new Promise<void>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`queue ${this.kind}: ${left.size} jobs not done in ${limitS} s`)), limitS * 1000);
            exited = () => reject(new Error(`worker exited:\n${this.proc.output()}`));
            this.proc.child.once('exit', exited);
          }),
        ]);
      } finally {
        if (exited) this.proc.child.off('exit', exited);
        clearInterval(tick);
        clearTimeout(timer);
        this.waiting = undefined;
      }
    }
    const seconds = (now() - t0) / 1000;
    const stmts = TRACE ? await statements(this.db) : undefined;
    const failed = await this.db.query(
      "SELECT count(*)::int AS n, min(error) AS e FROM steadytext_queue WHERE request_id = ANY($1::uuid[]) AND status <> 'completed'",
      [ids],
    );
    if (failed.rows[0].n > 0) throw new Error(`queue ${this.kind}: ${failed.rows[0].n} jobs not completed: ${failed.rows[0].e}`);
    let tokens = 0;
    if (this.kind === 'generate') {
      const res = await this.db.query<{ result: string }>('SELECT result FROM steadytext_queue WHERE request_id = ANY($1::uuid[])', [ids]);
      for (const row of res.rows) tokens += count(row.result);
    }
    return { seconds, tokens, enqueueSeconds: (enqueued - t0) / 1000, t0, statements: stmts };
  }

  /** The worker's engine calls since the last ask (traced runs only). */
  calls(): Promise<EngineCall[]> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: unknown) => {
        const msg = m as { engineCalls?: EngineCall[] };
        if (!msg.engineCalls) return;
        this.proc.messages.off('message', onMessage);
        resolve(msg.engineCalls);
      };
      this.proc.messages.on('message', onMessage);
      if (!this.proc.child.send({ engineCalls: true })) reject(new Error('worker IPC closed'));
    });
  }

  async stop(): Promise<void> {
    try {
      await this.proc.stop();
      await this.listener.end();
      await this.sys.reset(this.db);
    } finally {
      await this.db.end();
    }
  }
}

const sum = (x: Record<string, number>, keep: (k: string) => boolean = () => true) =>
  Object.entries(x).reduce((a, [k, v]) => a + (keep(k) ? v : 0), 0);
const isEngine = (thread: string) => thread === 'libuv-worker';

/** CPU seconds by where they went, for one run (direct: the engine runs in this process; queue: in the worker). */
function cpuSplit(run: EngineRun) {
  const c = run.trace!.cpu;
  const host = run.path === 'direct' ? c.bench : c.worker;
  const engine = sum(host, isEngine);
  const js = sum(host, (k) => !isEngine(k)) + (run.path === 'queue' ? c.bench.main ?? 0 : 0);
  return { engine, js, postgres: c.postgresS, total: sum(c.bench) + sum(c.worker) + c.postgresS };
}

function sideTraces(sides: Record<Path, EngineRun[]>): EnginePairs['trace'] {
  const side = (runs: EngineRun[]): SideTrace => {
    const t = runs.map((r) => r.trace!);
    const cpu = runs.map(cpuSplit);
    const per1k = (f: (c: ReturnType<typeof cpuSplit>) => number) => spread(cpu.map((c, i) => (f(c) * 1e6) / runs[i].items), 1);
    return {
      busy: spread(t.map((x) => x.busy)),
      headMs: spread(t.map((x) => x.headMs), 1),
      tailMs: spread(t.map((x) => x.tailMs), 1),
      callsInFlight: spread(t.map((x) => x.callsInFlight), 2),
      textsInFlight: spread(t.map((x) => x.textsInFlight), 1),
      perCall: spread(t.map((x) => x.perCall.mean), 1),
      cpuMsPer1k: { engine: per1k((c) => c.engine), js: per1k((c) => c.js), postgres: per1k((c) => c.postgres), total: per1k((c) => c.total) },
      ...(t[0].statements
        ? {
            statementsPer1k: Object.fromEntries(
              (['enqueue', 'claim', 'mark', 'complete'] as const).map((k) => {
                const m = (f: (x: { calls: number; ms: number }) => number) =>
                  spread(runs.map((r) => (f(r.trace!.statements![k]) * 1000) / r.items), 1).median;
                return [k, { calls: m((x) => x.calls), ms: m((x) => x.ms) }];
              }),
            ) as SideTrace['statementsPer1k'],
          }
        : {}),
    };
  };
  const q = sides.queue.map((r) => cpuSplit(r).total);
  const d = sides.direct.map((r) => cpuSplit(r).total);
  return { direct: side(sides.direct), queue: side(sides.queue), cpuRatio: spread(q.map((x, i) => x / d[i])) };
}

export async function engineScenario(sys: QueueSystem, opts: EngineOptions, progress: Progress, say: (line: string) => void): Promise<EngineResult> {
  const settings = resolveSettings({ models: 'tiny' });
  const llama = await getCpuLlama();
  const tokenizer = await llama.loadModel({ modelPath: ensureTinyModel('generation', settings.modelDir) });
  const count = (t: string) => tokenizer.tokenize(t, false).length;
  const runs: EngineRun[] = [];
  const byWidth: EnginePairs[] = [];
  const rate = (kind: Kind, items: number, r: { seconds: number; tokens: number }) => (kind === 'embed' ? items : r.tokens) / r.seconds;
  try {
    for (const width of opts.widths) {
      // direct: one engine per width (parallel contexts = width, like the worker's)
      const plain = await loadEngine({ models: 'tiny', modulePath: undefined, parallel: Math.max(2, width) });
      const traced = TRACE ? traceEngine(plain) : undefined;
      const engine: Engine = traced?.engine ?? plain;
      try {
        for (const kind of ['embed', 'generate'] as const) {
          const queue = await QueueSide.start(sys, kind, width, opts.maxTokens);
          try {
            const label = `engine ${kind} w=${width}`;
            // Warm-up, off the clock: contexts created, JIT warm; then the
            // estimate: the direct loop on growing inputs until one lasts 1 s.
            const warm = texts(Math.max(width * 2, 8), `warm ${kind}`);
            await engineLoop(engine, kind, width, warm, opts.maxTokens, count);
            await queue.run(warm, count);
            let n = Math.max(width * 4, 16);
            let estimate = 0;
            let itemsPerSecond = 0;
            for (;;) {
              const r = await engineLoop(engine, kind, width, texts(n, `estimate ${kind}`), opts.maxTokens, count);
              estimate = rate(kind, n, r);
              itemsPerSecond = n / r.seconds;
              if (r.seconds >= 1) break;
              n = sizeFor(itemsPerSecond, 1.2, width);
            }
            // a margin over the estimate: the machine may be faster in a later pair
            const items = sizeFor(itemsPerSecond, opts.minSeconds * 1.25, width);
            // the queue's own warm-up, about 1 s of work: its claim-ahead and job-time estimates settle
            await queue.run(texts(sizeFor(itemsPerSecond, 1, width), `warm queue ${kind}`), count);
            say(`${label}: direct ~${round(estimate, 0)} ${kind === 'embed' ? 'embeddings' : 'tokens'}/s; ${opts.pairs} pairs of ${items} ${kind === 'embed' ? 'texts' : 'prompts'} (≥ ${opts.minSeconds} s each)`);
            const paired = await interleave(opts.pairs, ['direct', 'queue'] as const, items, opts.minSeconds, async (path, pair, items) => {
              progress(`${label} pair ${pair + 1}/${opts.pairs} ${path}`, pair, opts.pairs);
              const inputs = texts(items, `${kind} ${pair}`);
              const before = TRACE ? cpuSnapshot(queue.proc.child.pid!) : undefined;
              let r: { seconds: number; tokens: number; enqueueSeconds?: number; t0?: number; statements?: Statements };
              let calls: EngineCall[] = [];
              if (path === 'direct') {
                traced?.take();
                const t0 = now();
                r = { ...(await engineLoop(engine, kind, width, inputs, opts.maxTokens, count)), t0 };
                calls = traced?.take() ?? [];
              } else {
                if (TRACE) await queue.calls();
                r = await queue.run(inputs, count, `${label} pair ${pair + 1}/${opts.pairs} queue`, progress);
                if (TRACE) calls = await queue.calls();
              }
              const run: EngineRun = {
                kind,
                path,
                width,
                pair,
                items,
                ...(kind === 'generate' ? { tokens: r.tokens } : {}),
                seconds: round(r.seconds),
                perSecond: round(rate(kind, items, r), 1),
                ...(r.enqueueSeconds !== undefined ? { enqueueSeconds: round(r.enqueueSeconds) } : {}),
              };
              if (before) {
                const cpu = cpuUsed(before, cpuSnapshot(queue.proc.child.pid!));
                run.trace = { ...traceSummary(calls, r.t0!, r.t0! + r.seconds * 1000), cpu, ...(r.statements ? { statements: r.statements } : {}) };
              }
              runs.push(run);
              return run;
            }, (n, factor) => sizeFor(n * factor, 1, width));
            const sides = paired.results;
            const counted = new Set([...sides.direct, ...sides.queue]);
            for (const run of runs) if (run.kind === kind && run.width === width && !counted.has(run)) run.redone = true;
            const d = sides.direct.map((x) => x.perSecond);
            const q = sides.queue.map((x) => x.perSecond);
            const p: EnginePairs = {
              kind,
              width,
              items: paired.size,
              redone: paired.redone,
              shortestSeconds: Math.min(...[...sides.direct, ...sides.queue].map((x) => x.seconds)),
              estimate: round(estimate, 1),
              direct: spread(d, 1),
              queue: spread(q, 1),
              ratio: spread(q.map((x, i) => x / d[i])),
              overhead: spread(q.map((x, i) => d[i] / x - 1)),
            };
            if (TRACE) p.trace = sideTraces(sides);
            byWidth.push(p);
            say(`${label}: queue/direct ${p.ratio.median} (${p.ratio.min}–${p.ratio.max}); direct ${p.direct.median}, queue ${p.queue.median}`);
          } finally {
            await queue.stop();
          }
        }
      } finally {
        await plain.dispose();
      }
    }
  } finally {
    await tokenizer.dispose();
  }
  return { minSeconds: opts.minSeconds, pairs: opts.pairs, traced: TRACE, runs, byWidth };
}
