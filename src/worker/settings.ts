// Worker settings. Precedence, highest first:
//   CLI flags > environment (STEADYTEXT_WORKER_*) > GUCs read from the database
//   (steadytext.worker_*) > defaults.
// resolveSettings() is pure (flags, env and GUC values in, settings out) so the
// precedence is unit-testable; loadSettings() reads the GUCs first.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { readFileSync } from 'node:fs';
import type { Engine, ModelRole } from '../engine/types.ts';
import type { HttpBackends, HttpDialect } from '../engine/httpEngine.ts';

export type LogLevel = 'silent' | 'info' | 'debug';

/** What the CLI flags (or a programmatic caller) may set; every field optional. */
export interface WorkerFlags {
  databaseUrl?: string;
  dbHost?: string;
  dbPort?: string | number;
  dbName?: string;
  dbUser?: string;
  dbPassword?: string;
  workerId?: string;
  concurrency?: string | number;
  /** Seconds (may be fractional) or an interval such as '500ms', '1s'. */
  pollInterval?: string | number;
  maxRetries?: string | number;
  /** Seconds. */
  timeout?: string | number;
  heartbeatInterval?: string | number;
  heartbeatTimeout?: string | number;
  retryBackoff?: string | number;
  retryBackoffMax?: string | number;
  shutdownGrace?: string | number;
  cacheEvictInterval?: string | number;
  /** Delete finished requests older than this ('7d', '12h'; 'off'); unset: off. */
  resultRetention?: string | number;
  models?: string;
  engineModule?: string;
  threads?: string | number;
  batchEmbeddings?: boolean;
  /** Most embed jobs in one engine.embed call. */
  embedBatchSize?: string | number;
  /** Jobs claimed ahead into the local buffer, beyond those running. */
  prefetch?: string | number;
  logLevel?: string;
  /** Serve /metrics and /health on this port (0: any free port); unset: off. */
  metricsPort?: string | number;
  metricsHost?: string;
  /** Local inference device: off (CPU), auto, cuda, vulkan. */
  gpu?: string;
  /** Inference servers (flags --<role>-server*, --server-*); see resolveServers. */
  generationServer?: string;
  generationServerDialect?: string;
  generationServerModel?: string;
  generationServerApiKeyFile?: string;
  embeddingServer?: string;
  embeddingServerDialect?: string;
  embeddingServerModel?: string;
  embeddingServerApiKeyFile?: string;
  rerankingServer?: string;
  rerankingServerDialect?: string;
  rerankingServerModel?: string;
  rerankingServerApiKeyFile?: string;
  serverTimeout?: string | number;
  serverMaxInFlight?: string | number;
  serverRetries?: string | number;
  serverRetryBackoff?: string | number;
  serverEmbedBatchSize?: string | number;
}

/** GUC values as current_setting(name, true) returns them (null when unset). */
export interface WorkerGucs {
  'steadytext.worker_concurrency'?: string | null;
  'steadytext.worker_poll_interval'?: string | null;
  'steadytext.worker_max_retries'?: string | null;
  'steadytext.worker_timeout'?: string | null;
}

export const GUC_NAMES = [
  'steadytext.worker_concurrency',
  'steadytext.worker_poll_interval',
  'steadytext.worker_max_retries',
  'steadytext.worker_timeout',
] as const;

export interface WorkerSettings {
  /** Passed to pg.Pool / pg.Client. */
  connection: pg.ClientConfig;
  workerId: string;
  /** Jobs run at once. */
  concurrency: number;
  /** Fallback poll when no NOTIFY arrives. */
  pollIntervalMs: number;
  /** Retries after the first attempt when the row's max_retries is NULL. */
  maxRetries: number;
  /** Per-job limit when the row's timeout_seconds is NULL. */
  timeoutSeconds: number;
  heartbeatIntervalMs: number;
  /** Written to steadytext_workers.heartbeat_timeout_seconds (whole seconds). */
  heartbeatTimeoutSeconds: number;
  /** Backoff before retry n (0-based): min(base * 2^n, max). */
  retryBackoffBaseMs: number;
  retryBackoffMaxMs: number;
  /** On stop: how long running jobs may finish before they are released. */
  shutdownGraceMs: number;
  cacheEvictIntervalMs: number;
  /** Result retention (retention.ts): finished requests older than this are deleted; undefined: off (default). */
  resultRetentionMs?: number;
  /** How often the retention runs when on. */
  resultCleanupIntervalMs: number;
  /** Rows deleted per statement by the retention. */
  resultCleanupBatchSize: number;
  models: 'default' | 'tiny';
  engineModule?: string;
  threads?: number;
  /** Claimed embed jobs share one engine.embed call. */
  batchEmbeddings: boolean;
  /** Most embed jobs in one engine.embed call (batches form across claims, whatever the concurrency). */
  embedBatchSize: number;
  /**
   * Jobs claimed ahead into the worker's local buffer, beyond those running.
   * null (the default, 'auto'): about AUTO_PREFETCH_MS of work at the
   * measured job time, at least the concurrency, at most AUTO_PREFETCH_MAX.
   */
  prefetch: number | null;
  logLevel: LogLevel;
  /** Where log lines go (default: stderr when logLevel is not silent). */
  log?: (line: string) => void;
  /** An engine already loaded (programmatic use); the worker does not dispose it. */
  engine?: Engine;
  /** Port of the /metrics + /health server (0: any free port); undefined: no server. */
  metricsPort?: number;
  /** Address the metrics server binds (default 0.0.0.0). */
  metricsHost?: string;
  /** Roles served by inference servers; a role not here runs on the local engine. */
  servers: HttpBackends;
  /** The local engine's device: 'off' (CPU), 'auto', 'cuda', 'vulkan'. */
  gpu: 'off' | 'auto' | 'cuda' | 'vulkan';
}

export const DEFAULTS = {
  concurrency: 1,
  pollIntervalMs: 1000,
  maxRetries: 3,
  timeoutSeconds: 300,
  heartbeatIntervalMs: 2000,
  heartbeatTimeoutSeconds: 10,
  retryBackoffBaseMs: 1000,
  retryBackoffMaxMs: 60_000,
  shutdownGraceMs: 30_000,
  cacheEvictIntervalMs: 60_000,
  /** Result retention is off unless set. */
  resultRetentionMs: undefined as number | undefined,
  resultCleanupIntervalMs: 300_000,
  resultCleanupBatchSize: 10_000,
  models: 'default' as const,
  batchEmbeddings: true,
  embedBatchSize: 32,
  logLevel: 'silent' as const,
  gpu: 'off' as const,
  serverDialect: 'llama-server' as const,
  serverTimeoutMs: 120_000,
  serverMaxInFlight: 4,
  serverRetries: 3,
  serverRetryBackoffMs: 500,
  serverEmbedBatchSize: 64,
};

/** prefetch 'auto': claim ahead about this much work (ms at the measured job time)... */
export const AUTO_PREFETCH_MS = 50;
/** ...and at most this many jobs. */
export const AUTO_PREFETCH_MAX = 256;

export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

const UNIT_MS: Record<string, number> = {
  us: 0.001,
  ms: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
};

/**
 * Parses a duration: a bare number is `defaultUnit` ('1.5' seconds), or a
 * PostgreSQL-style value with a unit ('500ms', '1s', '2 min'). Returns ms.
 */
export function parseDuration(value: string | number, name: string, defaultUnit: 's' | 'ms' = 's'): number {
  const text = String(value).trim();
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)$/.exec(text);
  const unit = m ? (m[2] || defaultUnit).toLowerCase() : '';
  if (!m || !(unit in UNIT_MS)) {
    throw new SettingsError(`${name}: expected a duration such as 1, 0.5, 500ms or 2s, got '${text}'`);
  }
  const ms = Number(m[1]) * UNIT_MS[unit];
  if (!(ms > 0)) throw new SettingsError(`${name}: must be greater than zero, got '${text}'`);
  return ms;
}

function parseInteger(value: string | number, name: string, min: number): number {
  const text = String(value).trim();
  if (!/^-?\d+$/.test(text)) throw new SettingsError(`${name}: expected an integer, got '${text}'`);
  const n = Number(text);
  if (n < min) throw new SettingsError(`${name}: must be at least ${min}, got ${n}`);
  return n;
}

type Source = { name: string; value: string | number | undefined | null };

/** The first source that is set, with the name to quote in errors. */
function pick(...sources: Source[]): Source | undefined {
  return sources.find((s) => s.value !== undefined && s.value !== null && String(s.value).trim() !== '');
}

/** Connection settings from flags and env: --database-url / DATABASE_URL, or --db-* / PG* variables. */
export function resolveConnection(flags: WorkerFlags, env: NodeJS.ProcessEnv = process.env): pg.ClientConfig {
  const password = flags.dbPassword ?? env.PGPASSWORD;
  const hasDbFlags = [flags.dbHost, flags.dbPort, flags.dbName, flags.dbUser].some((v) => v !== undefined);
  if (flags.databaseUrl && hasDbFlags) {
    throw new SettingsError('--database-url cannot be combined with --db-host/--db-port/--db-name/--db-user');
  }
  if (flags.databaseUrl) return { connectionString: flags.databaseUrl };
  if (hasDbFlags) {
    return {
      host: flags.dbHost ?? env.PGHOST ?? 'localhost',
      port: flags.dbPort !== undefined ? parseInteger(flags.dbPort, '--db-port', 1) : env.PGPORT ? parseInteger(env.PGPORT, 'PGPORT', 1) : 5432,
      database: flags.dbName ?? env.PGDATABASE,
      user: flags.dbUser ?? env.PGUSER,
      ...(password !== undefined ? { password } : {}),
    };
  }
  if (env.DATABASE_URL) return { connectionString: env.DATABASE_URL };
  if (env.PGHOST || env.PGDATABASE) return {}; // libpq-style PG* variables, read by pg itself
  throw new SettingsError(
    'no database: pass --database-url (or --db-host/--db-port/--db-name/--db-user), or set DATABASE_URL',
  );
}

export function defaultWorkerId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** Applies precedence flags > env > GUCs > defaults and validates every value. */
export function resolveSettings(
  flags: WorkerFlags = {},
  env: NodeJS.ProcessEnv = process.env,
  gucs: WorkerGucs = {},
  connection?: pg.ClientConfig,
): WorkerSettings {
  const int = (min: number, fallback: number, ...sources: Source[]) => {
    const s = pick(...sources);
    return s ? parseInteger(s.value!, s.name, min) : fallback;
  };
  const dur = (fallback: number, ...sources: Source[]) => {
    const s = pick(...sources);
    return s ? parseDuration(s.value!, s.name) : fallback;
  };

  const concurrency = int(
    1,
    DEFAULTS.concurrency,
    { name: '--concurrency', value: flags.concurrency },
    { name: 'STEADYTEXT_WORKER_CONCURRENCY', value: env.STEADYTEXT_WORKER_CONCURRENCY },
    { name: 'steadytext.worker_concurrency', value: gucs['steadytext.worker_concurrency'] },
  );
  const pollIntervalMs = dur(
    DEFAULTS.pollIntervalMs,
    { name: '--poll-interval', value: flags.pollInterval },
    { name: 'STEADYTEXT_WORKER_POLL_INTERVAL', value: env.STEADYTEXT_WORKER_POLL_INTERVAL },
    { name: 'steadytext.worker_poll_interval', value: gucs['steadytext.worker_poll_interval'] },
  );
  const maxRetries = int(
    0,
    DEFAULTS.maxRetries,
    { name: '--max-retries', value: flags.maxRetries },
    { name: 'STEADYTEXT_WORKER_MAX_RETRIES', value: env.STEADYTEXT_WORKER_MAX_RETRIES },
    { name: 'steadytext.worker_max_retries', value: gucs['steadytext.worker_max_retries'] },
  );
  const timeoutMs = dur(
    DEFAULTS.timeoutSeconds * 1000,
    { name: '--timeout', value: flags.timeout },
    { name: 'STEADYTEXT_WORKER_TIMEOUT', value: env.STEADYTEXT_WORKER_TIMEOUT },
    { name: 'steadytext.worker_timeout', value: gucs['steadytext.worker_timeout'] },
  );
  const heartbeatIntervalMs = dur(
    DEFAULTS.heartbeatIntervalMs,
    { name: '--heartbeat-interval', value: flags.heartbeatInterval },
    { name: 'STEADYTEXT_WORKER_HEARTBEAT_INTERVAL', value: env.STEADYTEXT_WORKER_HEARTBEAT_INTERVAL },
  );
  const heartbeatTimeoutMs = dur(
    DEFAULTS.heartbeatTimeoutSeconds * 1000,
    { name: '--heartbeat-timeout', value: flags.heartbeatTimeout },
    { name: 'STEADYTEXT_WORKER_HEARTBEAT_TIMEOUT', value: env.STEADYTEXT_WORKER_HEARTBEAT_TIMEOUT },
  );
  const heartbeatTimeoutSeconds = Math.ceil(heartbeatTimeoutMs / 1000);
  if (heartbeatTimeoutSeconds * 1000 <= heartbeatIntervalMs) {
    throw new SettingsError(
      `STEADYTEXT_WORKER_HEARTBEAT_TIMEOUT (${heartbeatTimeoutSeconds} s) must exceed STEADYTEXT_WORKER_HEARTBEAT_INTERVAL (${heartbeatIntervalMs / 1000} s)`,
    );
  }
  const retryBackoffBaseMs = dur(
    DEFAULTS.retryBackoffBaseMs,
    { name: '--retry-backoff', value: flags.retryBackoff },
    { name: 'STEADYTEXT_WORKER_RETRY_BACKOFF', value: env.STEADYTEXT_WORKER_RETRY_BACKOFF },
  );
  const retryBackoffMaxMs = dur(
    DEFAULTS.retryBackoffMaxMs,
    { name: '--retry-backoff-max', value: flags.retryBackoffMax },
    { name: 'STEADYTEXT_WORKER_RETRY_BACKOFF_MAX', value: env.STEADYTEXT_WORKER_RETRY_BACKOFF_MAX },
  );
  const shutdownGraceMs = dur(
    DEFAULTS.shutdownGraceMs,
    { name: '--shutdown-grace', value: flags.shutdownGrace },
    { name: 'STEADYTEXT_WORKER_SHUTDOWN_GRACE', value: env.STEADYTEXT_WORKER_SHUTDOWN_GRACE },
  );
  const cacheEvictIntervalMs = dur(
    DEFAULTS.cacheEvictIntervalMs,
    { name: '--cache-evict-interval', value: flags.cacheEvictInterval },
    { name: 'STEADYTEXT_WORKER_CACHE_EVICT_INTERVAL', value: env.STEADYTEXT_WORKER_CACHE_EVICT_INTERVAL },
  );
  const retentionSrc = pick(
    { name: '--result-retention', value: flags.resultRetention },
    { name: 'STEADYTEXT_WORKER_RESULT_RETENTION', value: env.STEADYTEXT_WORKER_RESULT_RETENTION },
  );
  const resultRetentionMs =
    retentionSrc && !['off', '0'].includes(String(retentionSrc.value).trim().toLowerCase())
      ? parseDuration(retentionSrc.value!, retentionSrc.name)
      : DEFAULTS.resultRetentionMs;
  const resultCleanupIntervalMs = dur(
    DEFAULTS.resultCleanupIntervalMs,
    { name: 'STEADYTEXT_WORKER_RESULT_CLEANUP_INTERVAL', value: env.STEADYTEXT_WORKER_RESULT_CLEANUP_INTERVAL },
  );
  const resultCleanupBatchSize = int(
    1,
    DEFAULTS.resultCleanupBatchSize,
    { name: 'STEADYTEXT_WORKER_RESULT_CLEANUP_BATCH_SIZE', value: env.STEADYTEXT_WORKER_RESULT_CLEANUP_BATCH_SIZE },
  );
  if (resultCleanupBatchSize > 100_000) {
    throw new SettingsError(`STEADYTEXT_WORKER_RESULT_CLEANUP_BATCH_SIZE: must be at most 100000, got ${resultCleanupBatchSize}`);
  }

  const modelsSrc = pick({ name: '--models', value: flags.models }, { name: 'STEADYTEXT_MODELS', value: env.STEADYTEXT_MODELS });
  const models = (modelsSrc?.value ?? DEFAULTS.models) as string;
  if (models !== 'default' && models !== 'tiny') {
    throw new SettingsError(`${modelsSrc!.name}: expected 'default' or 'tiny', got '${models}'`);
  }
  const threadsSrc = pick({ name: '--threads', value: flags.threads }, { name: 'STEADYTEXT_THREADS', value: env.STEADYTEXT_THREADS });
  const logSrc = pick({ name: '--log-level', value: flags.logLevel }, { name: 'STEADYTEXT_WORKER_LOG_LEVEL', value: env.STEADYTEXT_WORKER_LOG_LEVEL });
  const logLevel = (logSrc?.value ?? DEFAULTS.logLevel) as string;
  if (!['silent', 'info', 'debug'].includes(logLevel)) {
    throw new SettingsError(`${logSrc!.name}: expected silent, info or debug, got '${logLevel}'`);
  }
  const metricsSrc = pick(
    { name: '--metrics-port', value: flags.metricsPort },
    { name: 'STEADYTEXT_WORKER_METRICS_PORT', value: env.STEADYTEXT_WORKER_METRICS_PORT },
  );
  const metricsPort = metricsSrc ? parseInteger(metricsSrc.value!, metricsSrc.name, 0) : undefined;
  if (metricsPort !== undefined && metricsPort > 65535) {
    throw new SettingsError(`${metricsSrc!.name}: must be a port (0-65535), got ${metricsPort}`);
  }
  const batchSrc = pick({ name: 'STEADYTEXT_WORKER_BATCH_EMBEDDINGS', value: env.STEADYTEXT_WORKER_BATCH_EMBEDDINGS });
  let batchEmbeddings = flags.batchEmbeddings ?? DEFAULTS.batchEmbeddings;
  if (flags.batchEmbeddings === undefined && batchSrc) {
    const v = String(batchSrc.value).toLowerCase();
    if (!['0', '1', 'true', 'false', 'on', 'off'].includes(v)) {
      throw new SettingsError(`STEADYTEXT_WORKER_BATCH_EMBEDDINGS: expected true or false, got '${batchSrc.value}'`);
    }
    batchEmbeddings = ['1', 'true', 'on'].includes(v);
  }

  const embedBatchSize = int(
    1,
    DEFAULTS.embedBatchSize,
    { name: '--embed-batch-size', value: flags.embedBatchSize },
    { name: 'STEADYTEXT_WORKER_EMBED_BATCH_SIZE', value: env.STEADYTEXT_WORKER_EMBED_BATCH_SIZE },
  );
  const prefetchSrc = pick(
    { name: '--prefetch', value: flags.prefetch },
    { name: 'STEADYTEXT_WORKER_PREFETCH', value: env.STEADYTEXT_WORKER_PREFETCH },
  );
  const prefetch =
    !prefetchSrc || String(prefetchSrc.value).toLowerCase() === 'auto' ? null : parseInteger(prefetchSrc.value!, prefetchSrc.name, 0);

  return {
    connection: connection ?? resolveConnection(flags, env),
    workerId: flags.workerId ?? env.STEADYTEXT_WORKER_ID ?? defaultWorkerId(),
    concurrency,
    pollIntervalMs,
    maxRetries,
    timeoutSeconds: timeoutMs / 1000,
    heartbeatIntervalMs,
    heartbeatTimeoutSeconds,
    retryBackoffBaseMs,
    retryBackoffMaxMs,
    shutdownGraceMs,
    cacheEvictIntervalMs,
    resultRetentionMs,
    resultCleanupIntervalMs,
    resultCleanupBatchSize,
    models,
    engineModule: flags.engineModule ?? (env.STEADYTEXT_ENGINE_MODULE || undefined),
    threads: threadsSrc ? parseInteger(threadsSrc.value!, threadsSrc.name, 1) : undefined,
    batchEmbeddings,
    embedBatchSize,
    prefetch,
    logLevel: logLevel as LogLevel,
    metricsPort,
    metricsHost: flags.metricsHost ?? (env.STEADYTEXT_WORKER_METRICS_HOST || undefined),
    servers: resolveServers(flags, env),
    gpu: resolveGpu(flags, env),
  };
}

/** --gpu / STEADYTEXT_GPU: the local engine's device (CPU unless asked). */
function resolveGpu(flags: WorkerFlags, env: NodeJS.ProcessEnv): WorkerSettings['gpu'] {
  const src = pick({ name: '--gpu', value: flags.gpu }, { name: 'STEADYTEXT_GPU', value: env.STEADYTEXT_GPU });
  const v = String(src?.value ?? DEFAULTS.gpu);
  if (!['off', 'auto', 'cuda', 'vulkan'].includes(v)) throw new SettingsError(`${src!.name}: expected off, auto, cuda or vulkan, got '${v}'`);
  return v as WorkerSettings['gpu'];
}

const SERVER_ROLES: readonly ModelRole[] = ['generation', 'embedding', 'reranking'];
const DIALECTS: readonly HttpDialect[] = ['llama-server', 'openai', 'ollama', 'tei'];

/**
 * Inference servers per role: --<role>-server / STEADYTEXT_<ROLE>_SERVER (a
 * URL) with its dialect, model and API key (STEADYTEXT_<ROLE>_SERVER_API_KEY,
 * or a file named by --<role>-server-api-key-file /
 * STEADYTEXT_<ROLE>_SERVER_API_KEY_FILE; the key never appears in a message).
 * Timeout, requests in flight, retries, backoff and embed batch size are shared.
 */
export function resolveServers(flags: WorkerFlags = {}, env: NodeJS.ProcessEnv = process.env): HttpBackends {
  const f = flags as Record<string, string | number | undefined>;
  const servers: HttpBackends = {};
  const int = (min: number, fallback: number, flag: string, key: keyof WorkerFlags, envName: string) => {
    const s = pick({ name: flag, value: f[key] }, { name: envName, value: env[envName] });
    return s ? parseInteger(s.value!, s.name, min) : fallback;
  };
  const dur = (fallback: number, flag: string, key: keyof WorkerFlags, envName: string) => {
    const s = pick({ name: flag, value: f[key] }, { name: envName, value: env[envName] });
    return s ? parseDuration(s.value!, s.name) : fallback;
  };
  for (const role of SERVER_ROLES) {
    const ENV = `STEADYTEXT_${role.toUpperCase()}_SERVER`;
    const urlSrc = pick({ name: `--${role}-server`, value: f[`${role}Server`] }, { name: ENV, value: env[ENV] });
    if (!urlSrc) continue;
    const url = String(urlSrc.value).trim();
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new SettingsError(`${urlSrc.name}: expected an http(s) URL, got '${url}'`);
    }
    if (!/^https?:$/.test(parsed.protocol)) throw new SettingsError(`${urlSrc.name}: expected an http(s) URL, got '${url}'`);
    if (parsed.username || parsed.password) {
      throw new SettingsError(`${urlSrc.name}: put no credentials in the URL; use ${ENV}_API_KEY or ${ENV}_API_KEY_FILE`);
    }
    const dialectSrc = pick(
      { name: `--${role}-server-dialect`, value: f[`${role}ServerDialect`] },
      { name: `${ENV}_DIALECT`, value: env[`${ENV}_DIALECT`] },
    );
    const dialect = String(dialectSrc?.value ?? DEFAULTS.serverDialect) as HttpDialect;
    if (!DIALECTS.includes(dialect)) {
      throw new SettingsError(`${dialectSrc!.name}: expected one of ${DIALECTS.join(', ')}, got '${dialect}'`);
    }
    const model = pick(
      { name: `--${role}-server-model`, value: f[`${role}ServerModel`] },
      { name: `${ENV}_MODEL`, value: env[`${ENV}_MODEL`] },
    );
    const keyFile = pick(
      { name: `--${role}-server-api-key-file`, value: f[`${role}ServerApiKeyFile`] },
      { name: `${ENV}_API_KEY_FILE`, value: env[`${ENV}_API_KEY_FILE`] },
    );
    let apiKey = env[`${ENV}_API_KEY`] || undefined;
    if (keyFile) {
      try {
        apiKey = readFileSync(String(keyFile.value), 'utf8').trim();
      } catch (err) {
        throw new SettingsError(`${keyFile.name}: cannot read the API key file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      if (!apiKey) throw new SettingsError(`${keyFile.name}: the API key file is empty`);
    }
    servers[role] = {
      url: url.replace(/\/+$/, ''),
      dialect,
      model: model ? String(model.value).trim() : undefined,
      apiKey,
      timeoutMs: dur(DEFAULTS.serverTimeoutMs, '--server-timeout', 'serverTimeout', 'STEADYTEXT_SERVER_TIMEOUT'),
      maxInFlight: int(1, DEFAULTS.serverMaxInFlight, '--server-max-in-flight', 'serverMaxInFlight', 'STEADYTEXT_SERVER_MAX_IN_FLIGHT'),
      retries: int(0, DEFAULTS.serverRetries, '--server-retries', 'serverRetries', 'STEADYTEXT_SERVER_RETRIES'),
      retryBackoffMs: dur(DEFAULTS.serverRetryBackoffMs, '--server-retry-backoff', 'serverRetryBackoff', 'STEADYTEXT_SERVER_RETRY_BACKOFF'),
      embedBatchSize: int(1, DEFAULTS.serverEmbedBatchSize, '--server-embed-batch-size', 'serverEmbedBatchSize', 'STEADYTEXT_SERVER_EMBED_BATCH_SIZE'),
    };
    if (role === 'generation' && dialect === 'tei') {
      throw new SettingsError(`${dialectSrc!.name}: tei (text-embeddings-inference) cannot serve generation`);
    }
    if (role === 'reranking' && dialect === 'ollama') {
      throw new SettingsError(`${dialectSrc!.name}: Ollama has no rerank endpoint; use llama-server, openai (vLLM), tei, or the local engine`);
    }
  }
  return servers;
}

/**
 * Settings with the GUC layer read from the database: connects once with the
 * connection from flags/env, reads steadytext.worker_* and resolves.
 */
export async function loadSettings(
  flags: WorkerFlags = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<WorkerSettings> {
  const connection = resolveConnection(flags, env);
  resolveSettings(flags, env, {}, connection); // bad flags/env are reported before any connection attempt
  const { default: pgModule } = await import('pg');
  const { readWorkerGucs } = await import('../db/readWorkerGucs.ts');
  const { withRetries } = await import('../db/withRetries.ts');
  const gucs = await withRetries(async () => {
    const client = new pgModule.Client(connection);
    await client.connect();
    try {
      return await readWorkerGucs(client, GUC_NAMES);
    } finally {
      await client.end().catch(() => {});
    }
  });
  return resolveSettings(flags, env, gucs, connection);
}
