// `npm run bench`: pg-steadytext against graphile-worker and pg-boss, on one
// embedded PostgreSQL (server defaults: fsync on, durable), in one run.
// See bench/README.md. Flags:
//   --quick                 small sizes for iteration (10k jobs, 100k depth rows)
//   --scenarios a,b         or BENCH_SCENARIOS: enqueue, burndown, latency, depth, engine, cache, server, cli, backfill
//   --out <file>            results JSON (default bench/results/<date>.json)
// Paired scenarios (engine, depth; bench/lib/pairs.ts): BENCH_PAIRS (pairs per
// ratio, at least 5) and BENCH_MIN_SECONDS (each timed run at least this long)
// override the sizes below, BENCH_WIDTHS=1,16 limits the engine widths;
// BENCH_ENGINE_TRACE=1 records where the engine
// scenario's time goes (bench/lib/engineTrace.ts).
// Backfill (bench/scenarios/backfill.ts): BENCH_BACKFILL_ROWS (source rows),
// BENCH_BACKFILL_BATCH (rows per batch, every system), BENCH_BACKFILL_BARE_SESSIONS
// (the bare UPDATE's sessions, default 1), BENCH_BACKFILL_PARTS
// (bare,pipeline,pattern,graphile,lag,tiny: the parts to run, for iteration);
// BENCH_BACKFILL_TRACE=1 records each run's statements (pg_stat_statements).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, totalmem, platform, release } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { startBenchServer } from './lib/server.ts';
import { graphileWorker, pgBoss, steadytext, type QueueSystem } from './lib/systems.ts';
import { burnDown, enqueueRate, latency } from './scenarios/queue.ts';
import { depthScenario } from './scenarios/depth.ts';
import { cacheHit } from './scenarios/cache.ts';
import { engineScenario } from './scenarios/engine.ts';
import { serverScenario, type ServerRun } from './scenarios/server.ts';
import { cliStartup } from './scenarios/cli.ts';
import { BACKFILL_SYSTEMS, backfillScenario, type BackfillSystem } from './scenarios/backfill.ts';
import { buildReport, type BenchResults } from './report.ts';

const ALL = ['enqueue', 'burndown', 'latency', 'depth', 'engine', 'cache', 'server', 'cli', 'backfill'] as const;
type Scenario = (typeof ALL)[number];

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const value = (name: string) => {
  const i = argv.indexOf(name);
  const eq = argv.find((a) => a.startsWith(name + '='));
  return eq ? eq.slice(name.length + 1) : i >= 0 ? argv[i + 1] : undefined;
};
if (flag('--help') || flag('-h')) {
  console.log(`usage: npm run bench -- [--quick] [--scenarios ${ALL.join(',')}] [--out file.json]`);
  process.exit(0);
}
const quick = flag('--quick') || process.env.BENCH_QUICK === '1';
const picked = (value('--scenarios') ?? process.env.BENCH_SCENARIOS ?? ALL.join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const s of picked) {
  if (!(ALL as readonly string[]).includes(s)) {
    console.error(`unknown scenario '${s}' (choose from ${ALL.join(', ')})`);
    process.exit(2);
  }
}
const run = (s: Scenario) => picked.includes(s);

const envNumber = (name: string, least: number) => {
  const v = process.env[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < least) {
    console.error(`${name}=${v}: a number, at least ${least}`);
    process.exit(2);
  }
  return n;
};
const pairs = envNumber('BENCH_PAIRS', 5) ?? (quick ? 5 : 7);
const minSeconds = envNumber('BENCH_MIN_SECONDS', 0.1) ?? (quick ? 2 : 5);
// BENCH_WIDTHS=16: the engine scenario at some widths only (for iteration)
const widths = process.env.BENCH_WIDTHS?.split(',').map(Number) ?? [1, 4, 16];
const backfillRows = envNumber('BENCH_BACKFILL_ROWS', 100) ?? (quick ? 100_000 : 1_000_000);
const backfillBatch = envNumber('BENCH_BACKFILL_BATCH', 1) ?? 100;
const backfillBareSessions = envNumber('BENCH_BACKFILL_BARE_SESSIONS', 1) ?? 1;
const BACKFILL_PARTS = [...BACKFILL_SYSTEMS, 'lag', 'tiny'] as const;
const backfillParts = (process.env.BENCH_BACKFILL_PARTS ?? BACKFILL_PARTS.join(',')).split(',').map((x) => x.trim());
for (const p of backfillParts) {
  if (!(BACKFILL_PARTS as readonly string[]).includes(p)) {
    console.error(`BENCH_BACKFILL_PARTS: unknown part '${p}' (choose from ${BACKFILL_PARTS.join(', ')})`);
    process.exit(2);
  }
}

export const SIZES = quick
  ? { enqueueJobs: 10_000, enqueueCapSeconds: 15, burnJobs: 10_000, burnCapSeconds: 20, concurrency: 4, latencySamples: 200, bossLatencySamples: 20, depthRows: 100_000, depthSmall: 1_000, depthPending: 1_000, embedTexts: 200, prompts: 32, maxTokens: 32, widths, cacheRequests: 2_000, pairs, minSeconds, backfillRows, backfillDimensions: 1024, backfillBatch, backfillCapSeconds: 600, backfillPatternCapSeconds: 120, backfillLagSamples: 200, backfillTinyRows: 2_000 }
  : { enqueueJobs: 100_000, enqueueCapSeconds: 30, burnJobs: 100_000, burnCapSeconds: 30, concurrency: 4, latencySamples: 1_000, bossLatencySamples: 100, depthRows: 1_000_000, depthSmall: 1_000, depthPending: 1_000, embedTexts: 1_000, prompts: 128, maxTokens: 32, widths, cacheRequests: 10_000, pairs, minSeconds, backfillRows, backfillDimensions: 1024, backfillBatch, backfillCapSeconds: 3_600, backfillPatternCapSeconds: 600, backfillLagSamples: 1_000, backfillTinyRows: 2_000 };

const bars = new cliProgress.SingleBar(
  { format: '{bar} {percentage}% | {label} {value}/{total} | {elapsed}s total', hideCursor: true, clearOnComplete: false },
  cliProgress.Presets.shades_classic,
);
const started = Date.now();
let barStarted = false;
const progress = (label: string, done: number, total: number) => {
  if (!process.stdout.isTTY) return;
  if (!barStarted) {
    bars.start(total, done, { label });
    barStarted = true;
  }
  bars.setTotal(total);
  bars.update(done, { label });
};
const say = (line: string) => {
  if (barStarted) bars.stop();
  barStarted = false;
  console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
};

/** Installed version of a peer (from its package.json), for the report. */
function versionOf(pkg: string): string {
  const require = createRequire(import.meta.url);
  let dir = path.dirname(require.resolve(pkg));
  for (;;) {
    try {
      const j = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (j.name === pkg && j.version) return j.version;
    } catch {
      // not this directory
    }
    const up = path.dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}
const versions = { graphileWorker: versionOf('graphile-worker'), pgBoss: versionOf('pg-boss') };

const server = await startBenchServer({ statStatements: process.env.BENCH_ENGINE_TRACE === '1' || process.env.BENCH_BACKFILL_TRACE === '1' });
say(`PostgreSQL ${server.version} (embedded), fsync=${server.settings.fsync}, synchronous_commit=${server.settings.synchronous_commit}; ${quick ? 'quick' : 'full'} run: ${picked.join(', ')}`);

const results: BenchResults & { server?: ServerRun[] } = { enqueue: [], burndown: [], latency: [] };

let systems: QueueSystem[] = [];
const errors: Record<string, string> = {};
/** A scenario that throws is reported (table note, JSON `errors`) and the run goes on. */
async function guard(name: string, f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (err) {
    errors[name] = (err as Error).stack ?? String(err);
    say(`scenario ${name} FAILED: ${(err as Error).message.split('\n')[0]}`);
  }
}
try {
  const st = steadytext(await server.createDatabase('bench_steadytext'));
  const gw = graphileWorker(await server.createDatabase('bench_graphile'));
  const gwBatched = graphileWorker(gw.url, true);
  const boss = pgBoss(await server.createDatabase('bench_pgboss'));
  const bossBatched = pgBoss(boss.url, 100);
  systems = [st, gw, boss];
  for (const s of systems) await s.setup();
  // BENCH_SYSTEMS=pg-steadytext,graphile-worker limits the comparison runs (for iteration)
  const only = process.env.BENCH_SYSTEMS?.split(',').map((x) => x.trim());
  const want = (s: QueueSystem) => !only || only.some((o) => s.name.startsWith(o));
  say(`installed pg-steadytext, graphile-worker ${versions.graphileWorker}, pg-boss ${versions.pgBoss} (one database each)`);

  if (run('enqueue')) await guard('enqueue', async () => {
    for (const s of systems.filter(want)) {
      results.enqueue.push(...(await enqueueRate(s, SIZES.enqueueJobs, SIZES.enqueueCapSeconds, progress)));
      say(`enqueue ${s.name}: ${results.enqueue.slice(-2).map((r) => `${r.mode} ${r.jobsPerSecond}/s`).join(', ')}`);
    }
  });
  if (run('burndown')) await guard('burndown', async () => {
    for (const processes of [1, 4]) {
      for (const s of [st, gw, gwBatched, boss, bossBatched].filter(want)) {
        // warm-up run (discarded): caches, JIT, first-connection costs
        await burnDown(s, { jobs: Math.min(2_000, SIZES.burnJobs), processes, concurrency: SIZES.concurrency, capSeconds: 5 }, progress);
        const r = await burnDown(s, { jobs: SIZES.burnJobs, processes, concurrency: SIZES.concurrency, capSeconds: SIZES.burnCapSeconds }, progress);
        results.burndown.push(r);
        say(`burn-down ${s.name} x${processes}: ${r.jobsPerSecond} jobs/s${r.capped ? ` (time-capped: ${r.finished} of ${r.jobs} in ${r.seconds} s)` : ''}`);
      }
    }
  });
  if (run('latency')) await guard('latency', async () => {
    for (const s of systems.filter(want)) {
      const n = s === boss ? SIZES.bossLatencySamples : SIZES.latencySamples;
      const r = await latency(s, n, progress);
      results.latency.push(r);
      say(`latency ${s.name}: start p50 ${r.start.p50} ms p99 ${r.start.p99} ms${r.completeNotify ? `; end→NOTIFY p50 ${r.completeNotify.p50} ms` : ''}`);
    }
  });
  if (run('depth')) await guard('depth', async () => {
    const urls = { small: await server.createDatabase('bench_depth_small'), big: await server.createDatabase('bench_depth_big') };
    for (const url of Object.values(urls)) await steadytext(url).setup();
    const r = await depthScenario(
      urls,
      { small: SIZES.depthSmall, big: SIZES.depthRows, pending: SIZES.depthPending, pairs: SIZES.pairs, minSeconds: SIZES.minSeconds },
      progress,
    );
    results.depth = r;
    say(`depth: claim p50 ${r.bigP50.median} ms at ${r.big} rows vs ${r.smallP50.median} ms at ${r.small}; per pair ${r.ratio.median}x (${r.ratio.min}–${r.ratio.max}), ${r.pairs} pairs of ${r.claims} claims (fill ${r.fillSeconds} s)`);
  });
  if (run('engine')) await guard('engine', async () => {
    results.engine = await engineScenario(
      st,
      { widths: SIZES.widths, maxTokens: SIZES.maxTokens, minSeconds: SIZES.minSeconds, pairs: SIZES.pairs },
      progress,
      say,
    );
  });
  if (run('server')) await guard('server', async () => {
    results.server = await serverScenario(
      { embedTexts: SIZES.embedTexts, prompts: SIZES.prompts, maxTokens: SIZES.maxTokens, widths: SIZES.widths },
      progress,
      say,
    );
  });
  if (run('cache')) await guard('cache', async () => {
    results.cache = await cacheHit(st.url, SIZES.cacheRequests, progress);
    say(`cache hit: ${results.cache.requestsPerSecond} req/s, p50 ${results.cache.latency.p50} ms`);
  });
  if (run('backfill')) await guard('backfill', async () => {
    results.backfill = await backfillScenario(
      { create: (name) => server.createDatabase(name), drop: (name) => server.dropDatabase(name) },
      {
        rows: SIZES.backfillRows,
        dimensions: SIZES.backfillDimensions,
        batchSize: SIZES.backfillBatch,
        concurrency: SIZES.concurrency,
        bareSessions: backfillBareSessions,
        capSeconds: SIZES.backfillCapSeconds,
        patternCapSeconds: SIZES.backfillPatternCapSeconds,
        lagSamples: SIZES.backfillLagSamples,
        tinyRows: SIZES.backfillTinyRows,
        tinyBatchSize: SIZES.backfillBatch,
        pairs: SIZES.pairs,
        minSeconds: SIZES.minSeconds,
        systems: BACKFILL_SYSTEMS.filter((x) => backfillParts.includes(x)) as BackfillSystem[],
        lag: backfillParts.includes('lag') && backfillParts.includes('pipeline'),
        tiny: backfillParts.includes('tiny'),
      },
      progress,
      say,
    );
  });
  if (run('cli')) await guard('cli', async () => {
    results.cli = cliStartup(quick ? 5 : 20);
    say(`cli: steadytext --help p50 ${results.cli.help.p50} ms (bare node ${results.cli.bareNode.p50} ms, via tsx ${results.cli.viaTsx.p50} ms)`);
  });
} finally {
  if (barStarted) bars.stop();
  for (const s of systems) await s.close();
  await server.stop();
}

const date = new Date().toISOString();
const machine = {
  date,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  os: `${platform()} ${release()}`,
  node: process.version,
  postgres: server.version,
  postgresSettings: server.settings,
  versions,
};
const report = buildReport({ machine, quick, sizes: SIZES, scenarios: picked, results });
console.log('\n' + report.table);
for (const [name, e] of Object.entries(errors)) console.log(`\nscenario ${name} failed:\n${e}`);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)));
const out = value('--out') ?? path.join(root, 'results', `${date.slice(0, 10)}${quick ? '-quick' : ''}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ machine, quick, sizes: SIZES, scenarios: picked, results, ratios: report.ratios, targets: report.targets, errors }, null, 2) + '\n');
writeFileSync(out.replace(/\.json$/, '.md'), report.markdown + '\n');
console.log(`\nresults: ${path.relative(process.cwd(), out)} (markdown: ${path.relative(process.cwd(), out.replace(/\.json$/, '.md'))})`);
process.exit(Object.keys(errors).length > 0 ? 1 : 0);
