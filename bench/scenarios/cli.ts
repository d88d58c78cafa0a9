// CLI start-up: wall time of `steadytext --help` (node bin/steadytext.js, the
// built JavaScript in dist/), next to a bare `node -e 0` on the same machine,
// and the old way (the TypeScript sources through tsx) for comparison.
// Target: under 300 ms at the median. `npm run build` first: with dist/ older
// than src/, the bin runs the sources through tsx and this measures that.
// Standalone: node --import tsx bench/scenarios/cli.ts
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dist, now, type Dist } from '../lib/stats.ts';

export const CLI_STARTUP_TARGET_MS = 300;

export interface CliStartupResult {
  runs: number;
  node: string;
  /** `node bin/steadytext.js --help`, ms */
  help: Dist;
  /** `node -e 0`: the floor any Node command pays on this machine, ms */
  bareNode: Dist;
  /** `node --import tsx src/cli/main.ts --help`: compiling the sources at start, as before 1.1.0, ms */
  viaTsx: Dist;
  built: boolean;
  met: boolean;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function timeRuns(args: string[], runs: number): Dist {
  const times: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const t = now();
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
    const ms = now() - t;
    if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    if (i > 0) times.push(ms); // the first run warms the OS file cache (and Node's compile cache)
  }
  return dist(times);
}

export function cliStartup(runs = 20): CliStartupResult {
  const built = existsSync(path.join(ROOT, 'dist/.built'));
  const help = timeRuns(['bin/steadytext.js', '--help'], runs);
  return {
    runs,
    node: process.version,
    help,
    bareNode: timeRuns(['-e', '0'], runs),
    viaTsx: timeRuns(['--import', 'tsx', 'src/cli/main.ts', '--help'], Math.min(runs, 5)),
    built,
    met: help.p50 < CLI_STARTUP_TARGET_MS,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = cliStartup(Number(process.env.BENCH_CLI_RUNS ?? 20));
  console.log(JSON.stringify(r, null, 2));
  console.log(
    `steadytext --help: p50 ${r.help.p50.toFixed(0)} ms (target < ${CLI_STARTUP_TARGET_MS} ms: ${r.met ? 'met' : 'NOT met'}); ` +
      `bare node p50 ${r.bareNode.p50.toFixed(0)} ms; through tsx p50 ${r.viaTsx.p50.toFixed(0)} ms${r.built ? '' : ' (dist/ not built: run npm run build)'}`,
  );
}
