// `steadytext worker`: runs the background worker until SIGTERM/SIGINT.
// Flags > env (STEADYTEXT_WORKER_*) > GUCs (steadytext.worker_*) > defaults;
// the --db-* flags are the spec's `python -m pg_steadytext.python.worker` ones.
import { Command } from 'commander';
import { exitCodes, fail } from '../exit.ts';

interface WorkerOptions {
  databaseUrl?: string;
  dbHost?: string;
  dbPort?: string;
  dbName?: string;
  dbUser?: string;
  dbPassword?: string;
  concurrency?: string;
  pollInterval?: string;
  maxRetries?: string;
  timeout?: string;
  heartbeatInterval?: string;
  heartbeatTimeout?: string;
  shutdownGrace?: string;
  models?: string;
  engineModule?: string;
  threads?: string;
  workerId?: string;
  batchEmbeddings?: boolean;
  embedBatchSize?: string;
  prefetch?: string;
  logLevel?: string;
  metricsPort?: string;
  metricsHost?: string;
  resultRetention?: string;
}

/**
 * The inference-server flags (docs/worker.md, "Inference servers"), shared by
 * `steadytext worker` and `steadytext up`. Each role may go to its own server.
 */
export function addServerOptions(cmd: Command): Command {
  for (const role of ['generation', 'embedding', 'reranking'] as const) {
    const ENV = `STEADYTEXT_${role.toUpperCase()}_SERVER`;
    cmd
      .option(`--${role}-server <url>`, `serve ${role} from this inference server ($${ENV}; default: the local engine)`)
      .option(`--${role}-server-dialect <dialect>`, `llama-server, openai (vLLM, SGLang), ollama or tei ($${ENV}_DIALECT; default llama-server)`)
      .option(`--${role}-server-model <name>`, `model name on that server ($${ENV}_MODEL; default: the one it lists)`)
      .option(`--${role}-server-api-key-file <file>`, `file holding its API key ($${ENV}_API_KEY_FILE, or the key in $${ENV}_API_KEY)`);
  }
  return cmd
    .option('--server-timeout <seconds>', 'one request to an inference server ($STEADYTEXT_SERVER_TIMEOUT; default 120)')
    .option('--server-max-in-flight <n>', 'requests to each server at once ($STEADYTEXT_SERVER_MAX_IN_FLIGHT; default 4)')
    .option('--server-retries <n>', 'retries on 429, 5xx, timeouts and connection errors ($STEADYTEXT_SERVER_RETRIES; default 3)')
    .option('--server-retry-backoff <seconds>', 'first retry delay, doubled each time ($STEADYTEXT_SERVER_RETRY_BACKOFF; default 0.5)')
    .option('--server-embed-batch-size <n>', 'texts per embeddings request ($STEADYTEXT_SERVER_EMBED_BATCH_SIZE; default 64)');
}

export function workerCommand(): Command {
  const cmd = new Command('worker')
    .description('run the background worker: claim queued jobs, run them on the models, store results')
    .option('--database-url <url>', 'PostgreSQL connection URL (default: $DATABASE_URL)')
    .option('--db-host <host>', 'database host (instead of --database-url)')
    .option('--db-port <port>', 'database port (default 5432)')
    .option('--db-name <name>', 'database name')
    .option('--db-user <user>', 'database user')
    .option('--db-password <password>', 'database password (default: $PGPASSWORD)')
    .option('--concurrency <n>', 'jobs run at once ($STEADYTEXT_WORKER_CONCURRENCY, steadytext.worker_concurrency; default 1)')
    .option('--poll-interval <seconds>', 'fallback poll when no NOTIFY arrives, e.g. 1, 0.5, 500ms ($STEADYTEXT_WORKER_POLL_INTERVAL; default 1)')
    .option('--max-retries <n>', 'retries of a failing job when the request sets none ($STEADYTEXT_WORKER_MAX_RETRIES; default 3)')
    .option('--timeout <seconds>', 'per-job time limit when the request sets none ($STEADYTEXT_WORKER_TIMEOUT; default 300)')
    .option('--heartbeat-interval <seconds>', 'heartbeat period ($STEADYTEXT_WORKER_HEARTBEAT_INTERVAL; default 2)')
    .option('--heartbeat-timeout <seconds>', 'silence after which other workers reclaim this one\'s jobs ($STEADYTEXT_WORKER_HEARTBEAT_TIMEOUT; default 10)')
    .option('--shutdown-grace <seconds>', 'on SIGTERM, how long running jobs may finish before release ($STEADYTEXT_WORKER_SHUTDOWN_GRACE; default 30)')
    .option('--models <set>', "model set: 'default' or 'tiny' ($STEADYTEXT_MODELS)")
    .option('--engine-module <path>', 'module whose default export is an EngineFactory ($STEADYTEXT_ENGINE_MODULE)')
    .option('--threads <n>', 'inference threads')
    .option('--gpu <mode>', 'local engine device: off (CPU), auto, cuda or vulkan ($STEADYTEXT_GPU; default off)')
    .option('--worker-id <id>', 'steadytext_workers.worker_id (default: host-pid-random)')
    .option('--no-batch-embeddings', 'run claimed embed jobs one engine call each')
    .option('--embed-batch-size <n>', 'most embed jobs in one engine call, gathered across claims ($STEADYTEXT_WORKER_EMBED_BATCH_SIZE; default 32)')
    .option('--prefetch <n|auto>', 'jobs claimed ahead into the local buffer beyond those running; auto: about 50 ms of work, at least the concurrency, at most 256 ($STEADYTEXT_WORKER_PREFETCH; default auto)')
    .option('--log-level <level>', 'silent, info or debug (one line per job) ($STEADYTEXT_WORKER_LOG_LEVEL; default info)')
    .option('--metrics-port <port>', 'serve Prometheus /metrics and /health on this port, 0 for any free one ($STEADYTEXT_WORKER_METRICS_PORT; default: off)')
    .option('--result-retention <age>', "delete completed, failed and cancelled requests older than this, e.g. 7d, 12h; 'off' ($STEADYTEXT_WORKER_RESULT_RETENTION; default off)")
    .option('--metrics-host <address>', 'address the metrics server binds ($STEADYTEXT_WORKER_METRICS_HOST; default 0.0.0.0)');
  return addServerOptions(cmd).action(async (opts: WorkerOptions) => {
    const { loadSettings, SettingsError, Worker } = await import('../../worker/index.ts');
    let settings;
    try {
      settings = await loadSettings({
        ...opts,
        // commander sets batchEmbeddings=true by default for a --no- flag; only "off" is a choice
        batchEmbeddings: opts.batchEmbeddings === false ? false : undefined,
        logLevel: opts.logLevel ?? process.env.STEADYTEXT_WORKER_LOG_LEVEL ?? 'info',
      });
    } catch (err) {
      if (err instanceof SettingsError) fail(err.message, exitCodes.usage);
      fail(`cannot connect to the database: ${(err as Error).message}`, exitCodes.connection);
    }
    const worker = new Worker(settings);
    try {
      await worker.start();
    } catch (err) {
      const e = err as { code?: string; message: string; name?: string };
      if (e.name === 'SchemaVersionError') fail(e.message, exitCodes.failure);
      if (e.code === '42P01') {
        fail(`pg_steadytext is not installed in this database (${e.message}): run \`steadytext migrate\``, exitCodes.failure);
      }
      fail(`worker failed to start: ${e.message}`, exitCodes.failure);
    }
    const models = Object.entries(worker.models).map(([role, id]) => `${role}=${id}`).join(', ') || 'none';
    process.stdout.write(`worker ${worker.workerId} started (concurrency ${settings.concurrency}, models ${models})\n`);
    if (worker.metricsServer) process.stdout.write(`metrics: ${worker.metricsServer.url}/metrics\n`);
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      if (++signals > 1) {
        process.stderr.write(`steadytext: second ${sig}, exiting without releasing jobs (they will be reclaimed)\n`);
        process.exit(exitCodes.failure);
      }
      worker.stop().then(
        () => {
          process.stdout.write(`worker ${worker.workerId} stopped\n`);
          process.exit(exitCodes.ok);
        },
        (err) => fail(`worker stop failed: ${(err as Error).message}`, exitCodes.failure),
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
