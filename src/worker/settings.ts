// Worker settings, resolved through the one settings table (src/settings.ts):
//   CLI flags > environment (STEADYTEXT_WORKER_*) > GUCs read from the database
//   (steadytext.worker_*) > defaults (per command where a command differs).
// resolveSettings() is pure (flags, env and GUC values in, settings out) so the
// precedence is unit-testable; loadSettings() reads the GUCs first.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { readFileSync } from 'node:fs';
import type { Engine } from '../engine/types.ts';
import type { HttpBackends } from '../engine/httpEngine.ts';
import {
  defaultOf,
  GUC_NAMES as TABLE_GUCS,
  MODEL_ROLES,
  parseDuration,
  resolveEngineSettings,
  resolveOne,
  SETTINGS,
  SettingsError,
  type EntryPoint,
  type SettingInputs,
  type SettingKey,
} from '../settings.ts';

export { parseDuration, SettingsError, type EntryPoint };

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
  /**
   * Whose per-command defaults apply (docs/worker.md, "Settings"): 'worker'
   * and 'up' log at info, 'up' serves metrics on 127.0.0.1:9464. Unset:
   * 'programmatic' (silent, no metrics server).
   */
  entryPoint?: EntryPoint;
}

/** GUC values as current_setting(name, true) returns them (null when unset). */
export interface WorkerGucs {
  'steadytext.worker_concurrency'?: string | null;
  'steadytext.worker_poll_interval'?: string | null;
  'steadytext.worker_max_retries'?: string | null;
  'steadytext.worker_timeout'?: string | null;
}

export const GUC_NAMES = TABLE_GUCS as readonly (keyof WorkerGucs)[];

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
  /**
   * Where the worker's start, metrics and stop lines go ('started (...)',
   * 'metrics: ...', 'stopped (...)'), whatever the log level: `steadytext
   * worker` prints them on stdout, once. Default: the log, at info.
   */
  announce?: (line: string) => void;
  /** An engine already loaded (programmatic use); the worker does not dispose it. */
  engine?: Engine;
  /** Port of the /metrics + /health server (0: any free port); undefined: no server. */
  metricsPort?: number;
  /** Address the metrics server binds (default 127.0.0.1). */
  metricsHost?: string;
  /** Roles served by inference servers; a role not here runs on the local engine. */
  servers: HttpBackends;
  /** The local engine's device: 'off' (CPU), 'auto', 'cuda', 'vulkan'. */
  gpu: 'off' | 'auto' | 'cuda' | 'vulkan';
  /** Where each value came from (a flag, variable or GUC name); a setting not here has its default. */
  sources?: Partial<Record<SettingKey, string>>;
}

const dflt = <K extends SettingKey>(key: K) => defaultOf(SETTINGS[key] as never) as never;

/** The programmatic defaults, from the settings table (src/settings.ts). */
export const DEFAULTS = {
  concurrency: dflt('concurrency') as number,
  pollIntervalMs: dflt('pollInterval') as number,
  maxRetries: dflt('maxRetries') as number,
  timeoutSeconds: (dflt('timeout') as number) / 1000,
  heartbeatIntervalMs: dflt('heartbeatInterval') as number,
  heartbeatTimeoutSeconds: (dflt('heartbeatTimeout') as number) / 1000,
  retryBackoffBaseMs: dflt('retryBackoff') as number,
  retryBackoffMaxMs: dflt('retryBackoffMax') as number,
  shutdownGraceMs: dflt('shutdownGrace') as number,
  cacheEvictIntervalMs: dflt('cacheEvictInterval') as number,
  /** Result retention is off unless set. */
  resultRetentionMs: dflt('resultRetention') as number | undefined,
  resultCleanupIntervalMs: dflt('resultCleanupInterval') as number,
  resultCleanupBatchSize: dflt('resultCleanupBatchSize') as number,
  models: dflt('models') as 'default',
  batchEmbeddings: dflt('batchEmbeddings') as boolean,
  embedBatchSize: dflt('embedBatchSize') as number,
  logLevel: dflt('logLevel') as 'silent',
  gpu: dflt('gpu') as 'off',
  serverDialect: dflt('generationServerDialect') as 'llama-server',
  serverTimeoutMs: dflt('serverTimeout') as number,
  serverMaxInFlight: dflt('serverMaxInFlight') as number,
  serverRetries: dflt('serverRetries') as number,
  serverRetryBackoffMs: dflt('serverRetryBackoff') as number,
  serverEmbedBatchSize: dflt('serverEmbedBatchSize') as number,
};

/** prefetch 'auto': claim ahead about this much work (ms at the measured job time)... */
export const AUTO_PREFETCH_MS = 50;
/** ...and at most this many jobs. */
export const AUTO_PREFETCH_MAX = 256;

/** Connection settings from flags and env: --database-url / DATABASE_URL, or --db-* / PG* variables. */
export function resolveConnection(flags: WorkerFlags, env: NodeJS.ProcessEnv = process.env): pg.ClientConfig {
  const hasDbFlags = [flags.dbHost, flags.dbPort, flags.dbName, flags.dbUser].some((v) => v !== undefined);
  if (flags.databaseUrl && hasDbFlags) {
    throw new SettingsError('--database-url cannot be combined with --db-host/--db-port/--db-name/--db-user');
  }
  if (flags.databaseUrl) return { connectionString: flags.databaseUrl };
  const inputs: SettingInputs = { flags, env };
  if (hasDbFlags) {
    const password = resolveOne(SETTINGS.dbPassword, inputs).value;
    return {
      host: resolveOne(SETTINGS.dbHost, inputs).value,
      port: resolveOne(SETTINGS.dbPort, inputs).value,
      database: resolveOne(SETTINGS.dbName, inputs).value,
      user: resolveOne(SETTINGS.dbUser, inputs).value,
      ...(password !== undefined ? { password } : {}),
    };
  }
  const url = resolveOne(SETTINGS.databaseUrl, inputs).value;
  if (url) return { connectionString: url };
  if (env.PGHOST || env.PGDATABASE) return {}; // libpq-style PG* variables, read by pg itself
  throw new SettingsError(
    'no database: pass --database-url (or --db-host/--db-port/--db-name/--db-user), or set DATABASE_URL',
  );
}

export function defaultWorkerId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** Applies precedence flags > env > GUCs > (per-command) defaults and validates every value. */
export function resolveSettings(
  flags: WorkerFlags = {},
  env: NodeJS.ProcessEnv = process.env,
  gucs: WorkerGucs = {},
  connection?: pg.ClientConfig,
): WorkerSettings {
  const inputs: SettingInputs = { flags, env, gucs, entry: flags.entryPoint ?? 'programmatic' };
  const sources: Partial<Record<SettingKey, string>> = {};
  const get = <K extends SettingKey>(key: K) => {
    const r = resolveOne(SETTINGS[key] as never, inputs) as { value: unknown; source?: string };
    if (r.source) sources[key] = r.source;
    return r.value as never;
  };

  const heartbeatIntervalMs: number = get('heartbeatInterval');
  const heartbeatTimeoutSeconds = Math.ceil((get('heartbeatTimeout') as number) / 1000);
  if (heartbeatTimeoutSeconds * 1000 <= heartbeatIntervalMs) {
    throw new SettingsError(
      `STEADYTEXT_WORKER_HEARTBEAT_TIMEOUT (${heartbeatTimeoutSeconds} s) must exceed STEADYTEXT_WORKER_HEARTBEAT_INTERVAL (${heartbeatIntervalMs / 1000} s)`,
    );
  }
  // The engine's own settings (STEADYTEXT_ENGINE_PARALLEL...): a bad value stops the worker here, before it connects.
  resolveEngineSettings({ models: flags.models, threads: flags.threads, gpu: flags.gpu }, env);

  return {
    connection: connection ?? resolveConnection(flags, env),
    workerId: get('workerId') ?? defaultWorkerId(),
    concurrency: get('concurrency'),
    pollIntervalMs: get('pollInterval'),
    maxRetries: get('maxRetries'),
    timeoutSeconds: (get('timeout') as number) / 1000,
    heartbeatIntervalMs,
    heartbeatTimeoutSeconds,
    retryBackoffBaseMs: get('retryBackoff'),
    retryBackoffMaxMs: get('retryBackoffMax'),
    shutdownGraceMs: get('shutdownGrace'),
    cacheEvictIntervalMs: get('cacheEvictInterval'),
    resultRetentionMs: get('resultRetention'),
    resultCleanupIntervalMs: get('resultCleanupInterval'),
    resultCleanupBatchSize: get('resultCleanupBatchSize'),
    models: get('models'),
    engineModule: get('engineModule'),
    threads: get('threads'),
    batchEmbeddings: get('batchEmbeddings'),
    embedBatchSize: get('embedBatchSize'),
    prefetch: get('prefetch'),
    logLevel: get('logLevel'),
    metricsPort: get('metricsPort'),
    metricsHost: get('metricsHost'),
    servers: resolveServers(flags, env),
    gpu: get('gpu'),
    sources,
  };
}

/**
 * Inference servers per role: --<role>-server / STEADYTEXT_<ROLE>_SERVER (a
 * URL) with its dialect, model and API key (STEADYTEXT_<ROLE>_SERVER_API_KEY,
 * or a file named by --<role>-server-api-key-file /
 * STEADYTEXT_<ROLE>_SERVER_API_KEY_FILE; the key never appears in a message).
 * Timeout, requests in flight, retries, backoff and embed batch size are shared.
 */
export function resolveServers(flags: WorkerFlags = {}, env: NodeJS.ProcessEnv = process.env): HttpBackends {
  const inputs: SettingInputs = { flags, env };
  const servers: HttpBackends = {};
  for (const role of MODEL_ROLES) {
    const url = resolveOne(SETTINGS[`${role}Server`], inputs).value;
    if (url === undefined) continue;
    const dialect = resolveOne(SETTINGS[`${role}ServerDialect`], inputs);
    const keyFile = resolveOne(SETTINGS[`${role}ServerApiKeyFile`], inputs);
    let apiKey = resolveOne(SETTINGS[`${role}ServerApiKey`], inputs).value;
    if (keyFile.value !== undefined) {
      try {
        apiKey = readFileSync(keyFile.value, 'utf8').trim();
      } catch (err) {
        throw new SettingsError(`${keyFile.source}: cannot read the API key file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      if (!apiKey) throw new SettingsError(`${keyFile.source}: the API key file is empty`);
    }
    servers[role] = {
      url,
      dialect: dialect.value!,
      model: resolveOne(SETTINGS[`${role}ServerModel`], inputs).value,
      apiKey,
      timeoutMs: resolveOne(SETTINGS.serverTimeout, inputs).value!,
      maxInFlight: resolveOne(SETTINGS.serverMaxInFlight, inputs).value!,
      retries: resolveOne(SETTINGS.serverRetries, inputs).value!,
      retryBackoffMs: resolveOne(SETTINGS.serverRetryBackoff, inputs).value!,
      embedBatchSize: resolveOne(SETTINGS.serverEmbedBatchSize, inputs).value!,
    };
    if (role === 'generation' && dialect.value === 'tei') {
      throw new SettingsError(`${dialect.source}: tei (text-embeddings-inference) cannot serve generation`);
    }
    if (role === 'reranking' && dialect.value === 'ollama') {
      throw new SettingsError(`${dialect.source}: Ollama has no rerank endpoint; use llama-server, openai (vLLM), tei, or the local engine`);
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
