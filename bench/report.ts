// Turns raw results into ratios, target checks, a terminal table (cli-table3)
// and the same table as markdown (for README's performance section).
import Table from 'cli-table3';
import type { BurnDownResult, EnqueueResult, LatencyResult } from './scenarios/queue.ts';
import type { DepthResult } from './scenarios/depth.ts';
import type { EngineRun } from './scenarios/engine.ts';
import type { CacheHitResult } from './scenarios/cache.ts';
import { CLI_STARTUP_TARGET_MS, type CliStartupResult } from './scenarios/cli.ts';
import { round } from './lib/stats.ts';

interface Input {
  machine: { date: string; cpus: number; cpuModel: string; memoryGiB: number; node: string; postgres: string; postgresSettings: Record<string, string> };
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
  depth: DepthResult[];
  engine: EngineRun[];
  cache?: CacheHitResult;
  cli?: CliStartupResult;
}

export interface Target {
  name: string;
  goal: string;
  value: number | null;
  met: boolean | null;
}

type Row = [string, string, string, string, string, string];

const fmt = (x: number | undefined | null, digits = 0) =>
  x === undefined || x === null || !Number.isFinite(x) ? '–' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ms = (x: number | undefined) => (x === undefined ? '–' : `${fmt(x, x < 10 ? 2 : 1)} ms`);
const ratio = (a: number | undefined, b: number | undefined) => (a && b ? round(a / b, 2) : null);
const mark = (met: boolean | null) => (met === null ? '' : met ? ' ✓' : ' ✗');

export function buildReport(input: Input) {
  const { results: r } = input;
  const ST = 'pg-steadytext';
  const GW = 'graphile-worker';
  const PB = 'pg-boss';
  const rows: Row[] = [];
  const targets: Target[] = [];
  const ratios: Record<string, number | null> = {};

  // 1. enqueue
  for (const mode of ['single', 'batch'] as const) {
    const find = (s: string) => r.enqueue.find((e) => e.system === s && e.mode === mode);
    const get = (s: string) => find(s)?.jobsPerSecond;
    const capped = (s: string) => (find(s)?.capped ? ' ²' : '');
    if (!r.enqueue.some((e) => e.mode === mode)) continue;
    const st = get(ST);
    ratios[`enqueue_${mode}_vs_graphile`] = ratio(st, get(GW));
    ratios[`enqueue_${mode}_vs_pgboss`] = ratio(st, get(PB));
    rows.push([
      `enqueue, ${mode === 'single' ? 'one call per job' : 'batch functions'} (jobs/s)`,
      fmt(st) + capped(ST),
      fmt(get(GW)) + capped(GW),
      fmt(get(PB)) + capped(PB) + (mode === 'single' ? ' ¹' : ''),
      `${fmt(ratios[`enqueue_${mode}_vs_graphile`], 2)}x gw, ${fmt(ratios[`enqueue_${mode}_vs_pgboss`], 2)}x boss`,
      '',
    ]);
  }

  // 2. burn-down
  for (const processes of [1, 4]) {
    const get = (s: string) => r.burndown.find((b) => b.system === s && b.processes === processes);
    const st = get(ST);
    if (!st) continue;
    const gw = get(GW);
    const pb = get(PB);
    const pbb = r.burndown.find((b) => b.system.startsWith('pg-boss (') && b.processes === processes);
    const vsGw = ratio(st.jobsPerSecond, gw?.jobsPerSecond);
    const vsPb = ratio(st.jobsPerSecond, pb?.jobsPerSecond);
    const vsPbb = ratio(st.jobsPerSecond, pbb?.jobsPerSecond);
    ratios[`burndown_x${processes}_vs_graphile`] = vsGw;
    ratios[`burndown_x${processes}_vs_pgboss`] = vsPb;
    ratios[`burndown_x${processes}_vs_pgboss_batched`] = vsPbb;
    const t1: Target = { name: `burn-down x${processes} ≥ graphile-worker`, goal: '≥ 1.0x', value: vsGw, met: vsGw === null ? null : vsGw >= 1 };
    const t2: Target = { name: `burn-down x${processes} ≥ 3x pg-boss`, goal: '≥ 3.0x', value: vsPb, met: vsPb === null ? null : vsPb >= 3 };
    targets.push(t1, t2);
    const capped = (b?: BurnDownResult) => (b?.capped ? ' ²' : '');
    rows.push([
      `no-op burn-down, ${processes} process${processes > 1 ? 'es' : ''} × ${st.concurrencyPerProcess} (jobs/s)`,
      fmt(st.jobsPerSecond) + capped(st),
      fmt(gw?.jobsPerSecond) + capped(gw),
      `${fmt(pb?.jobsPerSecond, 1)}${capped(pb)}; batch 100: ${fmt(pbb?.jobsPerSecond)}${capped(pbb)}`,
      `${fmt(vsGw, 2)}x gw${mark(t1.met)}, ${fmt(vsPb, 1)}x boss${mark(t2.met)} (${fmt(vsPbb, 2)}x batch 100)`,
      '≥1x gw, ≥3x boss',
    ]);
  }

  // 3. latency
  if (r.latency.length > 0) {
    const get = (s: string) => r.latency.find((l) => l.system === s);
    const st = get(ST);
    const t: Target = { name: 'p50 start latency < 5 ms', goal: '< 5 ms', value: st?.start.p50 ?? null, met: st ? st.start.p50 < 5 : null };
    targets.push(t);
    const d = (l?: LatencyResult) => (l ? `${ms(l.start.p50)} / ${ms(l.start.p99)} / ${ms(l.start.max)}` : '–');
    rows.push(['enqueue commit → job start, p50 / p99 / max', d(st) + mark(t.met), d(get(GW)), d(get(PB)) + ` (${get(PB)?.samples ?? 0} samples) ³`, '', 'p50 < 5 ms']);
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

  // 4. depth
  if (r.depth.length >= 2) {
    const [small, big] = [...r.depth].sort((a, b) => a.rows - b.rows);
    const k = ratio(big.claim.p50, small.claim.p50);
    ratios.claim_p50_deep_vs_shallow = k;
    const t: Target = { name: `claim p50 at ${fmt(big.rows)} rows within 2x of ${fmt(small.rows)}`, goal: '≤ 2.0x', value: k, met: k === null ? null : k <= 2 };
    targets.push(t);
    rows.push([
      `claim p50 / p99 at ${fmt(small.rows)} vs ${fmt(big.rows)} rows (mostly completed)`,
      `${ms(small.claim.p50)} / ${ms(small.claim.p99)} vs ${ms(big.claim.p50)} / ${ms(big.claim.p99)}`,
      '⁴',
      '⁴',
      `${fmt(k, 2)}x${mark(t.met)}`,
      '≤ 2x',
    ]);
  }

  // 5. engine
  const eng = (kind: string, path: string, width: number) => r.engine.find((e) => e.kind === kind && e.path === path && e.width === width);
  const engineRows: string[][] = [];
  for (const kind of ['embed', 'generate'] as const) {
    const q1 = eng(kind, 'queue', 1);
    const d1 = eng(kind, 'direct', 1);
    if (!q1 || !d1) continue;
    const overhead = round(d1.perSecond / q1.perSecond - 1, 3);
    ratios[`queue_overhead_${kind}`] = overhead;
    const t: Target = { name: `queue overhead, ${kind} (tiny model)`, goal: '< 5%', value: overhead, met: overhead < 0.05 };
    targets.push(t);
    const unit = kind === 'embed' ? 'embeddings/s' : 'tokens/s';
    rows.push([
      `tiny model ${kind}, ${unit}: queue (1 worker, c=1) vs direct loop`,
      `${fmt(q1.perSecond)} vs ${fmt(d1.perSecond)}`,
      '',
      '',
      `overhead ${fmt(overhead * 100, 1)}%${mark(t.met)}`,
      '< 5%',
    ]);
    for (const path of ['direct', 'queue'] as const) {
      const base = eng(kind, path, 1)!;
      const cells = [`${kind} ${unit}, ${path}`];
      for (const w of [1, 4, 16]) {
        const e = eng(kind, path, w);
        const sp = e ? round(e.perSecond / base.perSecond, 2) : null;
        ratios[`${kind}_${path}_speedup_w${w}`] = sp;
        cells.push(e ? `${fmt(e.perSecond)} (${fmt(sp, 2)}x)` : '–');
      }
      engineRows.push(cells);
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
  const head = ['scenario', 'pg-steadytext', 'graphile-worker 0.18.0', 'pg-boss 10.4.2', 'ratio', 'target'];
  const notes = [
    '¹ pg-boss has no SQL enqueue function: boss.send() per job from Node, 8 in flight.',
    '² time-capped (30 s full, 15-20 s quick): rate = jobs enqueued or finished / elapsed, over the jobs done by then.',
    '³ pg-boss 10 polls (0.5 s is its minimum interval; no LISTEN wake-up across processes), so fewer serial samples.',
    '⁴ not measured: graphile-worker deletes completed jobs (its table never holds them); pg-boss moves them to an archive.',
    'pg-boss equivalent concurrency = N work() loops of batchSize 1 per process; "batch 100" = its own batched fetch/complete.',
  ];
  const header = `${m.date.slice(0, 10)}, ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}, PostgreSQL ${m.postgres} (embedded, fsync=${m.postgresSettings.fsync}, synchronous_commit=${m.postgresSettings.synchronous_commit})${input.quick ? ', QUICK sizes' : ''}`;

  const t = new Table({ head, wordWrap: true, colWidths: [34, 24, 16, 22, 28, 14] });
  for (const row of rows) t.push(row);
  const te = new Table({ head: ['engine (tiny model)', 'width 1', 'width 4', 'width 16'] });
  for (const row of engineRows) te.push(row);
  const table = [header, t.toString(), engineRows.length ? te.toString() : '', ...notes].filter(Boolean).join('\n');

  const md = (h: string[], rs: string[][]) =>
    [`| ${h.join(' | ')} |`, `|${h.map(() => '---').join('|')}|`, ...rs.map((x) => `| ${x.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`)].join('\n');
  const markdown = [
    `Measured ${header}.`,
    '',
    md(head, rows),
    '',
    engineRows.length
      ? 'Engine throughput by width (direct: texts per `engine.embed` call / generate calls in flight; queue: worker `--concurrency`); speedup over width 1 in brackets:\n\n' +
        md(['engine (tiny model)', 'width 1', 'width 4', 'width 16'], engineRows)
      : '',
    '',
    ...notes.map((n) => `${n}  `),
  ].join('\n');
  return { table, markdown, ratios, targets };
}
