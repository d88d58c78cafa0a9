// Turns raw results into ratios, target checks, a terminal table (cli-table3)
// and the same table as markdown (for README's performance section).
import Table from 'cli-table3';
import type { BurnDownResult, EnqueueResult, LatencyResult } from './scenarios/queue.ts';
import type { DepthResult } from './scenarios/depth.ts';
import type { EnginePairs, EngineResult } from './scenarios/engine.ts';
import { verdict, type Spread, type Verdict } from './lib/pairs.ts';
import type { CacheHitResult } from './scenarios/cache.ts';
import { CLI_STARTUP_TARGET_MS, type CliStartupResult } from './scenarios/cli.ts';
import { round, type Dist } from './lib/stats.ts';
import type { BackfillResult } from './scenarios/backfill.ts';

interface Input {
  machine: {
    date: string;
    cpus: number;
    cpuModel: string;
    memoryGiB: number;
    node: string;
    postgres: string;
    postgresSettings: Record<string, string>;
    versions?: { graphileWorker: string; pgBoss: string };
  };
  quick: boolean;
  sizes: Record<string, unknown>;
  scenarios: string[];
  results: BenchResults;
}

/** Every scenario's raw results, as bench/run.ts collects them. */
export interface BenchResults {
  enqueue: EnqueueResult[];
  burndown: BurnDownResult[];
  latency: LatencyResult[];
  depth?: DepthResult;
  engine?: EngineResult;
  cache?: CacheHitResult;
  cli?: CliStartupResult;
  backfill?: BackfillResult;
}

export interface Target {
  name: string;
  goal: string;
  /** One run's figure, or the median of the per-pair figures (see `spread`). */
  value: number | null;
  /** true / false; null: not measured, or within noise (some pairs meet it, some do not). */
  met: boolean | null;
  /** Paired figures: the spread of the per-pair values (bench/lib/pairs.ts). */
  spread?: Omit<Spread, 'values' | 'median'>;
  verdict?: Verdict;
}

type Row = [string, string, string, string, string, string];

const fmt = (x: number | undefined | null, digits = 0) =>
  x === undefined || x === null || !Number.isFinite(x) ? '–' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ms = (x: number | undefined) => (x === undefined ? '–' : `${fmt(x, x < 10 ? 2 : 1)} ms`);
const ratio = (a: number | undefined, b: number | undefined) => (a && b ? round(a / b, 2) : null);
const mark = (met: boolean | null) => (met === null ? '' : met ? ' ✓' : ' ✗');
const VERDICT_MARK: Record<Verdict, string> = { met: ' ✓', missed: ' ✗', 'within noise': ' ~ within noise' };
/** A paired figure: median (min–max over the pairs). */
const med = (s: Spread, f: (x: number) => string) => `${f(s.median)} (${f(s.min)}${s.min < 0 ? ' to ' : '–'}${f(s.max)})`;
const pct = (x: number) => `${fmt(x * 100, 1)}%`;
const times = (x: number) => `${fmt(x, 2)}x`;

export function buildReport(input: Input) {
  const { results: r } = input;
  const ST = 'pg-steadytext';
  const GW = 'graphile-worker';
  const PB = 'pg-boss';
  const GWB = 'graphile-worker (batched)';
  const rows: Row[] = [];
  const targets: Target[] = [];
  const target = (name: string, goal: string, value: number | null, ok: (v: number) => boolean): Target => {
    const t: Target = { name, goal, value, met: value === null ? null : ok(value) };
    targets.push(t);
    return t;
  };
  /** A target judged on every pair (bench/lib/pairs.ts): met, missed, or within noise. */
  const pairedTarget = (name: string, goal: string, s: Spread, ok: (v: number) => boolean): Target => {
    const v = verdict(s, ok);
    const t: Target = {
      name,
      goal,
      value: s.median,
      met: v === 'within noise' ? null : v === 'met',
      spread: { n: s.n, min: s.min, max: s.max, q1: s.q1, q3: s.q3 },
      verdict: v,
    };
    targets.push(t);
    return t;
  };
  const pmark = (t: Target) => VERDICT_MARK[t.verdict!];
  const ratios: Record<string, number | null> = {};

  // 1. enqueue (target, batch functions: ≥ 1.2x graphile-worker add_jobs and pg-boss insert)
  for (const mode of ['single', 'batch'] as const) {
    const find = (s: string) => r.enqueue.find((e) => e.system === s && e.mode === mode);
    const get = (s: string) => find(s)?.jobsPerSecond;
    const capped = (s: string) => (find(s)?.capped ? ' ²' : '');
    if (!r.enqueue.some((e) => e.mode === mode)) continue;
    const st = get(ST);
    const vsGw = ratio(st, get(GW));
    const vsPb = ratio(st, get(PB));
    ratios[`enqueue_${mode}_vs_graphile`] = vsGw;
    ratios[`enqueue_${mode}_vs_pgboss`] = vsPb;
    let marks = ['', ''];
    let goal = '';
    if (mode === 'batch') {
      const t1 = target(`enqueue, batch functions ≥ 1.2x graphile-worker add_jobs`, '≥ 1.2x', vsGw, (v) => v >= 1.2);
      const t2 = target(`enqueue, batch functions ≥ 1.2x pg-boss insert`, '≥ 1.2x', vsPb, (v) => v >= 1.2);
      marks = [mark(t1.met), mark(t2.met)];
      goal = '≥1.2x both';
    }
    rows.push([
      `enqueue, ${mode === 'single' ? 'one call per job' : 'batch functions'} (jobs/s)`,
      fmt(st) + capped(ST),
      fmt(get(GW)) + capped(GW),
      fmt(get(PB)) + capped(PB) + (mode === 'single' ? ' ¹' : ''),
      `${fmt(vsGw, 2)}x gw${marks[0]}, ${fmt(vsPb, 2)}x boss${marks[1]}`,
      goal,
    ]);
  }

  // 2. burn-down. Targets (issue 13): 1 process: ≥ 1.5x graphile-worker
  // (default), ≥ 1x its batched mode; 4 processes: ≥ 2x graphile-worker
  // (default), ≥ 1.5x pg-boss batched.
  const GOALS: Record<number, { gw: number; gwb?: number; pbb?: number }> = { 1: { gw: 1.5, gwb: 1 }, 4: { gw: 2, pbb: 1.5 } };
  for (const processes of [1, 4]) {
    const get = (s: string) => r.burndown.find((b) => b.system === s && b.processes === processes);
    const st = get(ST);
    if (!st) continue;
    const gw = get(GW);
    const gwb = get(GWB);
    const pb = get(PB);
    const pbb = r.burndown.find((b) => b.system.startsWith('pg-boss (') && b.processes === processes);
    const vsGw = ratio(st.jobsPerSecond, gw?.jobsPerSecond);
    const vsGwb = ratio(st.jobsPerSecond, gwb?.jobsPerSecond);
    const vsPb = ratio(st.jobsPerSecond, pb?.jobsPerSecond);
    const vsPbb = ratio(st.jobsPerSecond, pbb?.jobsPerSecond);
    ratios[`burndown_x${processes}_vs_graphile`] = vsGw;
    ratios[`burndown_x${processes}_vs_graphile_batched`] = vsGwb;
    ratios[`burndown_x${processes}_vs_pgboss`] = vsPb;
    ratios[`burndown_x${processes}_vs_pgboss_batched`] = vsPbb;
    const g = GOALS[processes];
    const tGw = target(`burn-down x${processes} ≥ ${g.gw}x graphile-worker (default)`, `≥ ${g.gw}x`, vsGw, (v) => v >= g.gw);
    const tGwb = g.gwb === undefined ? null : target(`burn-down x${processes} ≥ ${g.gwb}x graphile-worker (batched)`, `≥ ${g.gwb}x`, vsGwb, (v) => v >= g.gwb!);
    const tPbb = g.pbb === undefined ? null : target(`burn-down x${processes} ≥ ${g.pbb}x pg-boss (batched)`, `≥ ${g.pbb}x`, vsPbb, (v) => v >= g.pbb!);
    const capped = (b?: BurnDownResult) => (b?.capped ? ' ²' : '');
    const goal = [`≥${g.gw}x gw`, tGwb ? `≥${g.gwb}x gw batched` : '', tPbb ? `≥${g.pbb}x boss batched` : ''].filter(Boolean).join(', ');
    rows.push([
      `no-op burn-down, ${processes} process${processes > 1 ? 'es' : ''} × ${st.concurrencyPerProcess} (jobs/s)`,
      fmt(st.jobsPerSecond) + capped(st),
      `${fmt(gw?.jobsPerSecond)}${capped(gw)}; batched: ${fmt(gwb?.jobsPerSecond)}${capped(gwb)}`,
      `${fmt(pb?.jobsPerSecond)}${capped(pb)}; batch 100: ${fmt(pbb?.jobsPerSecond)}${capped(pbb)}`,
      `${fmt(vsGw, 2)}x gw${mark(tGw.met)}, ${fmt(vsGwb, 2)}x gw batched${mark(tGwb?.met ?? null)}; ` +
        `${fmt(vsPb, 2)}x boss, ${fmt(vsPbb, 2)}x boss batch 100${mark(tPbb?.met ?? null)}`,
      goal,
    ]);
  }

  // 3. latency
  if (r.latency.length > 0) {
    const get = (s: string) => r.latency.find((l) => l.system === s);
    const st = get(ST);
    const t = target('enqueue commit → job start p50 < 2 ms', '< 2 ms', st?.start.p50 ?? null, (v) => v < 2);
    const d = (l?: LatencyResult) => (l ? `${ms(l.start.p50)} / ${ms(l.start.p99)} / ${ms(l.start.max)}` : '–');
    rows.push(['enqueue commit → job start, p50 / p99 / max', d(st) + mark(t.met), d(get(GW)), d(get(PB)) + ` (${get(PB)?.samples ?? 0} samples) ³`, '', 'p50 < 2 ms']);
    if (st?.completeNotify) {
      rows.push([
        'job end → steadytext_completed NOTIFY at a listener, p50 / p99 / max',
        `${ms(st.completeNotify.p50)} / ${ms(st.completeNotify.p99)} / ${ms(st.completeNotify.max)}`,
        'no completion NOTIFY',
        'no completion NOTIFY',
        '',
        '',
      ]);
    }
  }

  // 4. depth (paired: deep and shallow blocks of claims in turns)
  if (r.depth) {
    const d = r.depth;
    ratios.claim_p50_deep_vs_shallow = d.ratio.median;
    const t = pairedTarget(`claim p50 at ${fmt(d.big)} rows within 2x of ${fmt(d.small)}`, '≤ 2.0x', d.ratio, (v) => v <= 2);
    rows.push([
      `claim p50 at ${fmt(d.small)} vs ${fmt(d.big)} rows (mostly completed); median (min–max) of ${d.pairs} pairs of blocks of ${fmt(d.claims)} claims, ` +
        `each ≥ ${d.minSeconds} s (shortest ${fmt(Math.min(...d.blocks.filter((b) => !b.redone).map((b) => b.seconds)), 2)} s)`,
      `${med(d.smallP50, ms)} vs ${med(d.bigP50, ms)}`,
      '⁴',
      '⁴',
      `${med(d.ratio, times)}${pmark(t)}`,
      '≤ 2x',
    ]);
  }

  // 5. engine (paired: queue and direct runs in turns, each ≥ minSeconds).
  // Targets (issue 13): overhead at width 1 ≤ 15% (embed), ≤ 10% (generate); ≤ 5% at width 16.
  const engineRows: string[][] = [];
  const traceRows: string[][] = [];
  const W1_GOAL = { embed: 0.15, generate: 0.1 } as const;
  const eng = (kind: string, width: number): EnginePairs | undefined => r.engine?.byWidth.find((e) => e.kind === kind && e.width === width);
  for (const kind of ['embed', 'generate'] as const) {
    const p1 = eng(kind, 1);
    const p16 = eng(kind, 16);
    if (!r.engine?.byWidth.some((e) => e.kind === kind)) continue;
    const unit = kind === 'embed' ? 'embeddings/s' : 'tokens/s';
    const cells: string[] = [];
    if (p1) {
      ratios[`queue_overhead_${kind}`] = p1.overhead.median;
      const t = pairedTarget(`queue overhead, ${kind}, width 1 (tiny model)`, `≤ ${W1_GOAL[kind] * 100}%`, p1.overhead, (v) => v <= W1_GOAL[kind]);
      cells.push(`w1: ${med(p1.overhead, pct)}${pmark(t)}`);
    }
    if (p16) {
      ratios[`queue_overhead_${kind}_w16`] = p16.overhead.median;
      const t = pairedTarget(`queue overhead, ${kind}, width 16 (tiny model)`, '≤ 5%', p16.overhead, (v) => v <= 0.05);
      cells.push(`w16: ${med(p16.overhead, pct)}${pmark(t)}`);
    }
    const rate = (p?: EnginePairs) => (p ? `${fmt(p.queue.median)} vs ${fmt(p.direct.median)}` : '–');
    if (p1 || p16) rows.push([
      `tiny model ${kind}, ${unit}: queue (1 worker) vs direct loop, medians of ${r.engine!.pairs} pairs; overhead = direct / queue − 1 per pair, median (min–max)`,
      `w1: ${rate(p1)}; w16: ${rate(p16)}`,
      '',
      '',
      `overhead ${cells.join('; ')}`,
      `≤ ${W1_GOAL[kind] * 100}% (w1), ≤ 5% (w16)`,
    ]);
    for (const path of ['direct', 'queue'] as const) {
      const base = eng(kind, 1)?.[path].median;
      const row = [`${kind} ${unit}, ${path}`];
      for (const w of [1, 4, 16]) {
        const e = eng(kind, w);
        const sp = e && base ? round(e[path].median / base, 2) : null;
        ratios[`${kind}_${path}_speedup_w${w}`] = sp;
        row.push(e ? `${med(e[path], (x) => fmt(x))} [${fmt(sp, 2)}x]` : '–');
      }
      engineRows.push(row);
    }
    for (const p of r.engine?.byWidth.filter((e) => e.kind === kind && e.trace) ?? []) {
      for (const path of ['direct', 'queue'] as const) {
        const t = p.trace![path];
        const c = t.cpuMsPer1k;
        traceRows.push([
          `${kind} w${p.width} ${path}`,
          med(t.busy, (x) => `${fmt(x * 100, 1)}%`),
          `${med(t.headMs, (x) => fmt(x, 0))} / ${med(t.tailMs, (x) => fmt(x, 0))}`,
          `${fmt(t.callsInFlight.median, 1)} (${fmt(t.textsInFlight.median, 0)}); ${fmt(t.perCall.median, 1)}`,
          `${fmt(c.engine.median, 0)} / ${fmt(c.js.median, 0)} / ${fmt(c.postgres.median, 0)} = ${fmt(c.total.median, 0)}`,
          path === 'queue' ? med(p.trace!.cpuRatio, times) : '',
          t.statementsPer1k
            ? (['claim', 'mark', 'complete'] as const).map((k) => `${k} ${fmt(t.statementsPer1k![k].calls)} (${fmt(t.statementsPer1k![k].ms)} ms)`).join(', ')
            : '',
        ]);
      }
    }
    const row = [`${kind}: queue / direct, per pair`];
    for (const w of [1, 4, 16]) {
      const e = eng(kind, w);
      row.push(e ? med(e.ratio, times) : '–');
    }
    engineRows.push(row);
  }

  // backfill (issue: pipelines). Targets: pipeline rows/s ≥ 0.5x the bare
  // UPDATE (the physical limit), ≥ 5x the spec's pattern, ≥ 1.5x graphile-worker
  // batch jobs; WAL bytes per row ≤ 1.5x the bare UPDATE's; tiny model:
  // pipeline rows/s ≥ 0.9x a direct engine loop (paired). Sync lag: no target.
  const mdTable = (h: string[], rs: string[][]) =>
    [`| ${h.join(' | ')} |`, `|${h.map(() => '---').join('|')}|`, ...rs.map((x) => `| ${x.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`)].join('\n');
  const backfillRows: string[][] = [];
  const backfillCpuRows: string[][] = [];
  const backfillTraces: string[] = [];
  if (r.backfill) {
    const b = r.backfill;
    const run = (s: string) => b.runs.find((x) => x.system === s);
    const [bare, bareBin, pipe, pat, gwr] = (['bare', 'bare-binary', 'pipeline', 'pattern', 'graphile'] as const).map(run);
    const capped = (x?: { capped: boolean }) => (x?.capped ? ' ⁵' : '');
    const rps = (x?: { rowsPerSecond: number; capped: boolean }) => (x ? `${fmt(x.rowsPerSecond)}${capped(x)}` : '–');
    const vsBare = ratio(pipe?.rowsPerSecond, bare?.rowsPerSecond);
    // the physical limit: the faster way to send the same vectors (binary, where measured)
    const vsBareBin = ratio(pipe?.rowsPerSecond, bareBin?.rowsPerSecond);
    const limit = bareBin ?? bare;
    const vsLimit = ratio(pipe?.rowsPerSecond, limit?.rowsPerSecond);
    const limitName = limit === bareBin ? 'binary bare UPDATE' : 'bare UPDATE';
    const vsPattern = ratio(pipe?.rowsPerSecond, pat?.rowsPerSecond);
    const vsGw = ratio(pipe?.rowsPerSecond, gwr?.rowsPerSecond);
    const walVsBare = ratio(pipe?.walBytesPerRow, bare?.walBytesPerRow);
    ratios.backfill_vs_bare_update = vsBare;
    ratios.backfill_vs_bare_update_binary = vsBareBin;
    ratios.backfill_vs_spec_pattern = vsPattern;
    ratios.backfill_vs_graphile_batched = vsGw;
    ratios.backfill_wal_per_row_vs_bare_update = walVsBare;
    const size = `${fmt(b.rows)} rows, ${b.dimensions}-dim \`real[]\`, batch ${b.batchSize}`;
    const tBare = target(`backfill (${size}): pipeline rows/s ≥ 0.5x ${limitName}`, '≥ 0.5x', vsLimit, (v) => v >= 0.5);
    const tPat = target(`backfill (${size}): pipeline rows/s ≥ 5x the spec's pattern`, '≥ 5x', vsPattern, (v) => v >= 5);
    const tGw = target(`backfill (${size}): pipeline rows/s ≥ 1.5x graphile-worker batch jobs`, '≥ 1.5x', vsGw, (v) => v >= 1.5);
    const tWal = target(`backfill (${size}): pipeline WAL bytes/row ≤ 1.5x bare UPDATE`, '≤ 1.5x', walVsBare, (v) => v <= 1.5);
    rows.push([
      `backfill, rows/s (${size}; one worker × ${b.concurrency}, bare UPDATE in ${b.bareSessions} session${b.bareSessions > 1 ? 's' : ''})`,
      `pipeline ${rps(pipe)}; spec pattern ${rps(pat)}; bare UPDATE ${rps(bare)} (text), ${rps(bareBin)} (binary)`,
      `batch jobs, batched mode: ${rps(gwr)}`,
      '',
      `pipeline: ${fmt(vsLimit, 2)}x ${limitName}${mark(tBare.met)} (${fmt(vsBare, 2)}x text bare), ${fmt(vsPattern, 2)}x pattern${mark(tPat.met)}, ${fmt(vsGw, 2)}x gw${mark(tGw.met)}`,
      '≥0.5x bare, ≥5x pattern, ≥1.5x gw batch jobs',
    ]);
    const wal = (x?: { walBytesPerRow: number; checkpointInside: boolean }) => (x ? `${fmt(x.walBytesPerRow)}${x.checkpointInside ? ' ⁶' : ''}` : '–');
    rows.push([
      'backfill, WAL bytes per row (pg_current_wal_lsn() diff / rows)',
      `pipeline ${wal(pipe)}; spec pattern ${wal(pat)}; bare UPDATE ${wal(bare)}`,
      wal(gwr),
      '',
      `pipeline: ${fmt(walVsBare, 2)}x bare${mark(tWal.met)}`,
      '≤1.5x bare',
    ]);
    const miss = {
      bare:
        "the pipeline's own bookkeeping (claim, per-row state, the write statement's checks and lookups) costs as much as writing the vectors: a backfill takes over twice the time the table itself needs",
      pattern: 'a pipeline saves less than 5x over what a user writes by hand with the async functions: its write path costs close to a queue job per row',
      graphile: "a general job queue's batch jobs fill the column nearly as fast: the pipeline's in-database claim and write cost per row is not below graphile-worker's per-job cost spread over a batch",
      wal: 'the bookkeeping writes more than half a vector per row to the WAL: replicas, WAL archives and checkpoints carry that on every backfilled or changed row',
      tiny: 'the pipeline leaves the engine idle between batches (claim and write not overlapped with inference) or takes CPU the engine needs: with a real model this is the throughput users get',
      lag: "no target; well above enqueue → job start means the change → claim path adds a wake-up delay (a poll, a debounce, a claim that skips the pipeline) before the row's batch is claimed",
    };
    const verdictText = (t: Target) => (t.met === null ? (t.verdict === 'within noise' ? '~ within noise' : 'not measured') : t.met ? '✓ met' : '✗ missed');
    backfillRows.push(
      [
        `pipeline rows/s / ${limitName} \`UPDATE ... FROM unnest\` rows/s, the physical limit (${size})`,
        `${fmt(vsLimit, 2)}x (${rps(pipe)} vs ${rps(limit)}); ${fmt(vsBare, 2)}x the text-form bare UPDATE (${rps(bare)})`,
        '≥ 0.5x',
        verdictText(tBare),
        miss.bare,
      ],
      [`pipeline rows/s / the spec's pattern (\`steadytext_embed_async\` per row + \`process_completed_embeddings()\`)`, `${fmt(vsPattern, 2)}x (${rps(pipe)} vs ${rps(pat)})`, '≥ 5x', verdictText(tPat), miss.pattern],
      [`pipeline rows/s / graphile-worker ${input.machine.versions?.graphileWorker ?? ''} batch jobs, batched mode`, `${fmt(vsGw, 2)}x (${rps(pipe)} vs ${rps(gwr)})`, '≥ 1.5x', verdictText(tGw), miss.graphile],
      [`pipeline WAL bytes per row / bare UPDATE's`, `${fmt(walVsBare, 2)}x (${wal(pipe)} vs ${wal(bare)} bytes)`, '≤ 1.5x', verdictText(tWal), miss.wal],
    );
    const NAMES = {
      bare: 'bare UPDATE (text vectors)',
      'bare-binary': 'bare UPDATE (binary vectors)',
      pipeline: 'pipeline',
      pattern: "spec's pattern",
      graphile: 'graphile-worker batch jobs',
    } as const;
    for (const x of b.runs) {
      backfillCpuRows.push([
        NAMES[x.system],
        `${fmt(x.rowsPerSecond)}${capped(x)}`,
        `${fmt(x.seconds, 1)} s`,
        wal(x),
        `${fmt(x.cpuMsPer1kRows.postgres)} / ${x.system === 'bare' || x.system === 'bare-binary' ? '–' : fmt(x.cpuMsPer1kRows.worker)} / ${fmt(x.cpuMsPer1kRows.bench)}`,
        `${fmt(x.machineBusy * 100)}%`,
        x.maxProcessing === undefined ? '' : fmt(x.maxProcessing),
      ]);
      if (x.statements) {
        backfillTraces.push(
          `${NAMES[x.system]} (pg_stat_statements, track = all: a statement inside a function counts again in its caller):\n\n` +
            mdTable(['statement', 'calls', 'server ms', 'rows', 'µs per row backfilled'], x.statements.map((q) => ['`' + q.query.replaceAll('`', "'") + '`', fmt(q.calls), fmt(q.totalMs), fmt(q.rows), fmt(q.usPerRow, 1)])),
        );
      }
    }
    if (b.tiny) {
      const t = b.tiny;
      ratios.backfill_tiny_vs_direct = t.ratio.median;
      const tt = pairedTarget(`backfill, tiny model (${fmt(t.rows)} rows, batch ${t.batchSize}): pipeline rows/s ≥ 0.9x direct engine loop`, '≥ 0.9x', t.ratio, (v) => v >= 0.9);
      rows.push([
        `tiny model backfill, rows/s: pipeline (1 worker) vs direct engine loop, ${fmt(t.rows)} rows, batch ${t.batchSize}, median (min–max) of ${t.pairs} pairs`,
        `${med(t.pipeline, (x) => fmt(x))} vs ${med(t.direct, (x) => fmt(x))}`,
        '',
        '',
        `${med(t.ratio, times)}${pmark(tt)}`,
        '≥ 0.9x',
      ]);
      backfillRows.push([
        `tiny model: pipeline rows/s / direct engine loop (\`engine.embed\`, same batch size), per pair; ${fmt(t.rows)} rows, ${t.pairs} pairs of runs ≥ ${t.minSeconds} s`,
        `${med(t.ratio, times)} (${med(t.pipeline, (x) => fmt(x))} vs ${med(t.direct, (x) => fmt(x))} rows/s; CPU per 1,000 rows, all processes: ${fmt(t.cpuMsPer1kRows.pipeline.median)} vs ${fmt(t.cpuMsPer1kRows.direct.median)} ms)`,
        '≥ 0.9x',
        verdictText(tt),
        miss.tiny,
      ]);
    }
    if (b.lag) {
      const l = b.lag;
      const st = r.latency.find((x) => x.system === ST);
      const d3 = (x: Dist) => `${ms(x.p50)} / ${ms(x.p99)} / ${ms(x.max)}`;
      const startLat = st ? `enqueue commit → job start (latency scenario) ${ms(st.start.p50)} / ${ms(st.start.p99)}` : 'enqueue → job start: run the latency scenario beside it';
      rows.push([
        `pipeline sync lag: input change committed → result written, p50 / p99 / max (${l.samples} serial changes, one worker, no-op engine)`,
        d3(l.changeToWritten),
        '',
        '',
        `change → engine call ${ms(l.changeToStart.p50)} / ${ms(l.changeToStart.p99)}; ${startLat}`,
        '',
      ]);
      backfillRows.push([
        `sync lag, input change committed → result written (p50 / p99 / max; ${l.samples} samples)`,
        `${d3(l.changeToWritten)}; → engine call ${ms(l.changeToStart.p50)} / ${ms(l.changeToStart.p99)}; ${startLat}`,
        '–',
        '',
        miss.lag,
      ]);
    }
  }

  // cache
  if (r.cache) {
    rows.push([
      'cache hit inside the enqueue call: requests/s, p50 / p99',
      `${fmt(r.cache.requestsPerSecond)}/s, ${ms(r.cache.latency.p50)} / ${ms(r.cache.latency.p99)}`,
      '',
      '',
      `miss (pending insert) p50 ${ms(r.cache.missLatency.p50)}`,
      '',
    ]);
  }

  // cli start-up
  if (r.cli) {
    targets.push({ name: 'cli_help_p50_ms', goal: `< ${CLI_STARTUP_TARGET_MS} ms`, value: r.cli.help.p50, met: r.cli.met });
    rows.push([
      '`steadytext --help` start-up, p50 / p99',
      `${ms(r.cli.help.p50)} / ${ms(r.cli.help.p99)}`,
      '',
      '',
      `bare node ${ms(r.cli.bareNode.p50)}; via tsx ${ms(r.cli.viaTsx.p50)}`,
      `< ${CLI_STARTUP_TARGET_MS} ms: ${r.cli.met ? 'met' : 'NOT met'}`,
    ]);
  }

  const m = input.machine;
  const v = input.machine.versions ?? { graphileWorker: '?', pgBoss: '?' };
  const head = ['scenario', 'pg-steadytext', `graphile-worker ${v.graphileWorker}`, `pg-boss ${v.pgBoss}`, 'ratio', 'target'];
  const notes = [
    '¹ pg-boss has no SQL enqueue function: boss.send() per job from Node, 8 in flight.',
    '² time-capped (30 s full, 15-20 s quick): rate = jobs enqueued or finished / elapsed, over the jobs done by then.',
    '³ pg-boss: LISTEN/NOTIFY wake-up on (useListenNotify, queue notify: true), polling every 0.5 s as its fallback; fewer serial samples.',
    '⁴ not measured: graphile-worker deletes completed jobs (its table never holds them); pg-boss moves them to an archive.',
    'Paired figures (engine, depth, tiny-model backfill): median (min–max) of per-pair values, the two sides run in turns, each run at least a few seconds; ✓ every pair meets the target, ✗ none does, "~ within noise" the pairs fall on both sides of it. The other rows are one run each.',
    'graphile-worker: default = its defaults (one get_job and one complete_job per job); batched = localQueue size 500 with completeJobBatchDelay and failJobBatchDelay 0.',
    'pg-boss: equivalent concurrency = localConcurrency N of batchSize 1 per process; "batch 100" = its own batched fetch/complete (burstWhenBatchFull).',
    ...(r.backfill
      ? [
          `⁵ backfill: time-capped (${r.backfill.patternCapSeconds} s for the spec's pattern, ${r.backfill.capSeconds} s for the others): rate = rows written / elapsed.`,
          '⁶ backfill: a checkpoint began inside the run: its WAL holds full-page images of the pages written after it.',
          'backfill: one run each, same table and vectors (the no-op engine\'s, 1024 float32 values, BENCH_EMBED_DIMENSIONS); pgvector is not installed on the bench server, so the destination column is real[] (a vector(1024) column would store 4 kB a row the same way).',
        ]
      : []),
  ];
  const header = `${m.date.slice(0, 10)}, ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}, PostgreSQL ${m.postgres} (embedded, fsync=${m.postgresSettings.fsync}, synchronous_commit=${m.postgresSettings.synchronous_commit})${input.quick ? ', QUICK sizes' : ''}`;

  const t = new Table({ head, wordWrap: true, colWidths: [34, 24, 16, 22, 28, 14] });
  for (const row of rows) t.push(row);
  const engineHead = ['engine (tiny model), median (min–max) [speedup over width 1]', 'width 1', 'width 4', 'width 16'];
  const te = new Table({ head: engineHead });
  for (const row of engineRows) te.push(row);
  const traceHead = [
    'engine trace (BENCH_ENGINE_TRACE=1)',
    'engine call in flight, share of wall',
    'ms before first / after last call',
    'calls (texts) in flight; texts per call',
    'CPU ms per 1,000 items: engine / JS / PostgreSQL = total',
    'CPU queue / direct',
    'statements per 1,000 jobs (server ms)',
  ];
  const tt = new Table({ head: traceHead });
  for (const row of traceRows) tt.push(row);
  const backfillHead = ['backfill figure', 'measured', 'target', 'verdict', 'what a miss means'];
  const backfillCpuHead = ['backfill run', 'rows/s', 'wall', 'WAL bytes/row', 'CPU ms per 1,000 rows: PostgreSQL / worker / bench', 'machine busy', 'most rows processing at once'];
  const tb = new Table({ head: backfillHead, wordWrap: true, colWidths: [34, 30, 9, 11, 46] });
  for (const row of backfillRows) tb.push(row);
  const table = [header, t.toString(), engineRows.length ? te.toString() : '', traceRows.length ? tt.toString() : '', backfillRows.length ? tb.toString() : '', ...notes]
    .filter(Boolean)
    .join('\n');

  const md = mdTable;
  const markdown = [
    `Measured ${header}.`,
    '',
    md(head, rows),
    '',
    engineRows.length
      ? `Engine throughput by width (direct: texts per \`engine.embed\` call / generate calls in flight; queue: worker \`--concurrency\`), ` +
        `${r.engine!.pairs} pairs of runs of at least ${r.engine!.minSeconds} s (shortest: ${fmt(Math.min(...r.engine!.byWidth.map((e) => e.shortestSeconds)), 2)} s; ` +
        `${r.engine!.byWidth.reduce((a, e) => a + e.redone, 0)} pairs run again, larger, because a run was shorter), queue and direct in turns: median (min–max) over the pairs, speedup of the medians over width 1 in brackets:\n\n` +
        md(engineHead, engineRows)
      : '',
    '',
    traceRows.length
      ? 'Where the time went (median (min–max) over the pairs; JS = the engine process\'s JavaScript threads, plus the bench\'s NOTIFY listener on the queue side):\n\n' +
        md(traceHead, traceRows) +
        '\n'
      : '',
    backfillRows.length ? 'Backfill (pipelines), each figure with its target and what a miss means:\n\n' + md(backfillHead, backfillRows) + '\n' : '',
    backfillCpuRows.length
      ? 'Backfill runs, where the time went (CPU from /proc: PostgreSQL = every server process; worker = the worker or graphile-worker process; bench = this process, which runs the bare UPDATE and the polling; machine busy: all cores, anyone\'s work):\n\n' +
        md(backfillCpuHead, backfillCpuRows) +
        '\n'
      : '',
    ...backfillTraces.map((x) => x + '\n'),
    ...notes.map((n) => `${n}  `),
  ].join('\n');
  return { table, markdown, ratios, targets };
}
