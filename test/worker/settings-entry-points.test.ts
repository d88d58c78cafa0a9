// `steadytext worker`, `steadytext up` and a program calling startWorker
// resolve their settings through one table (src/settings.ts): for the same
// flags, environment and GUCs they get the same values, except the per-command
// defaults the table documents (docs/worker.md, "Settings").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { upCommand, upWorkerFlags } from '../../src/cli/commands/up.ts';
import { workerCommand, workerFlagsFrom } from '../../src/cli/commands/worker.ts';
import { defaultOf, flagsFromOptions, resolveOne, SETTINGS, type EntryPoint, type Setting } from '../../src/settings.ts';
import { resolveSettings, type WorkerSettings } from '../../src/worker/index.ts';

const connection = { connectionString: 'postgres://u@localhost/db' };

/** The options a command's parser gives for these arguments (its action replaced, nothing runs). */
async function parsed(cmd: Command, args: string[]): Promise<Record<string, unknown>> {
  let opts: Record<string, unknown> = {};
  cmd.exitOverride().action((o: Record<string, unknown>) => {
    opts = o;
  });
  await cmd.parseAsync(args, { from: 'user' });
  return opts;
}

async function resolveBoth(args: string[], env: NodeJS.ProcessEnv = {}, gucs = {}) {
  const worker = resolveSettings(workerFlagsFrom(await parsed(workerCommand(), args), 'worker'), env, gucs, connection);
  const up = resolveSettings(upWorkerFlags(await parsed(upCommand(), args)), env, gucs, connection);
  return { worker, up };
}

/** WorkerSettings fields that differ (the worker id is random, `sources` is bookkeeping). */
function differing(a: WorkerSettings, b: WorkerSettings): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => !['workerId', 'sources'].includes(k)).filter((k) => {
    try {
      assert.deepEqual((a as never)[k], (b as never)[k]);
      return false;
    } catch {
      return true;
    }
  }).sort();
}

/** Settings whose documented default differs between two entry points. */
function documentedDifferences(x: EntryPoint, y: EntryPoint): string[] {
  return (Object.values(SETTINGS) as Setting[]).filter((s) => defaultOf(s, x) !== defaultOf(s, y)).map((s) => s.key).sort();
}

test('the table documents exactly one deliberate difference between up and worker: the metrics port', () => {
  assert.deepEqual(documentedDifferences('worker', 'up'), ['metricsPort']);
  assert.deepEqual(documentedDifferences('programmatic', 'worker'), ['logLevel']);
});

test('with nothing set, up and worker resolve the same settings except the documented per-command defaults', async () => {
  const { worker, up } = await resolveBoth([]);
  assert.deepEqual(differing(worker, up), documentedDifferences('worker', 'up'));
  assert.equal(up.metricsPort, 9464);
  assert.equal(up.metricsHost, '127.0.0.1');
  assert.equal(worker.metricsPort, undefined, 'the worker serves no metrics unless asked');
  assert.equal(worker.metricsHost, '127.0.0.1', 'both on loopback unless told otherwise');
  assert.equal(up.logLevel, 'info');
  assert.equal(worker.logLevel, 'info');
  assert.equal(resolveSettings({}, {}, {}, connection).logLevel, 'silent', 'programmatic: silent');
  assert.equal(up.sources?.metricsPort, undefined, "up's 9464 is a default (a free port is taken when it is busy)");
});

test('the same flags, environment and GUCs give up and worker the same settings', async () => {
  const args = ['--concurrency', '3', '--models', 'tiny', '--gpu', 'auto', '--log-level', 'debug', '--metrics-port', '9500', '--embedding-server', 'http://gpu-1:8080/', '--server-retries', '5'];
  const env = {
    STEADYTEXT_WORKER_METRICS_HOST: '10.0.0.5',
    STEADYTEXT_WORKER_HEARTBEAT_TIMEOUT: '20',
    STEADYTEXT_WORKER_PREFETCH: '8',
    STEADYTEXT_THREADS: '2',
    STEADYTEXT_EMBEDDING_SERVER_DIALECT: 'tei',
  };
  const gucs = { 'steadytext.worker_max_retries': '7', 'steadytext.worker_concurrency': '9' };
  const { worker, up } = await resolveBoth(args, env, gucs);
  assert.deepEqual(differing(worker, up), []);
  assert.equal(up.concurrency, 3, 'flag > GUC');
  assert.equal(up.maxRetries, 7, 'GUC > default');
  assert.equal(up.metricsPort, 9500);
  assert.equal(up.sources?.metricsPort, '--metrics-port', 'a port the user named: up does not swap it for a free one');
  assert.equal(up.metricsHost, '10.0.0.5');
  assert.equal(up.servers.embedding?.dialect, 'tei');
  assert.equal(up.threads, 2);
});

test("up's log level follows STEADYTEXT_WORKER_LOG_LEVEL like the worker's (flag > env > default)", async () => {
  const { worker, up } = await resolveBoth([], { STEADYTEXT_WORKER_LOG_LEVEL: 'silent' });
  assert.equal(worker.logLevel, 'silent');
  assert.equal(up.logLevel, 'silent');
  const flagged = await resolveBoth(['--log-level', 'debug'], { STEADYTEXT_WORKER_LOG_LEVEL: 'silent' });
  assert.equal(flagged.up.logLevel, 'debug');
});

test('every flag up takes means what the same worker flag means', () => {
  const upFlags = new Set(workerCommand().options.map((o) => o.long));
  for (const o of upCommand().options) {
    const s = (Object.values(SETTINGS) as Setting[]).find((x) => x.flag?.split(' ')[0] === o.long && x.commands.includes('up'));
    assert.ok(s, `up's ${o.long} is not in the settings table`);
    if (upFlags.has(o.long!) && s.commands.includes('worker')) continue;
    // Flags only up has: its embedded database and --no-worker.
    assert.ok(['pgPort', 'dataDir', 'startWorker'].includes(s.key), `${o.long}: a worker setting up takes must be the worker's flag`);
  }
});

test('--no-x flags count only when given: --no-batch-embeddings turns batching off, --no-worker starts no worker', async () => {
  const on = await resolveBoth([]);
  assert.equal(on.worker.batchEmbeddings, true);
  const off = resolveSettings(workerFlagsFrom(await parsed(workerCommand(), ['--no-batch-embeddings']), 'worker'), { STEADYTEXT_WORKER_BATCH_EMBEDDINGS: 'true' }, {}, connection);
  assert.equal(off.batchEmbeddings, false, 'the flag wins over the variable');
  assert.equal(resolveSettings(workerFlagsFrom(await parsed(workerCommand(), []), 'worker'), { STEADYTEXT_WORKER_BATCH_EMBEDDINGS: 'off' }, {}, connection).batchEmbeddings, false);
  const upOpts = async (args: string[]) => flagsFromOptions(await parsed(upCommand(), args), 'up');
  assert.equal(resolveOne(SETTINGS.startWorker, { flags: await upOpts([]), entry: 'up' }).value, true);
  assert.equal(resolveOne(SETTINGS.startWorker, { flags: await upOpts(['--no-worker']), entry: 'up' }).value, false);
  assert.equal('startWorker' in upWorkerFlags(await parsed(upCommand(), ['--no-worker', '--port', '6000'])), false, "up's own flags stay out of its worker's");
});
