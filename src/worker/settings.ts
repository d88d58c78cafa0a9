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
  fieldDefaults,
  GUC_NAMES,
  MODEL_ROLES,
  parseDuration,
  resolveEngineSettings,
  resolveFields,
  resolveOne,
  SETTINGS,
  SettingsError,
  type EntryPoint,
  type FlagsOf,
  type GucName,
  type LOG_LEVELS,
  type SettingInputs,
  type SettingKey,
  type SettingValues,
} from '../settings.ts';

export { GUC_NAMES, parseDuration, SettingsError, type EntryPoint };

export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * What the CLI flags (or a programmatic caller) may set, every field optional:
 * the settings `steadytext worker` takes as flags, keyed as in the table
 * (src/settings.ts), each as text or the number/boolean it stands for.
 */
export type WorkerFlags = FlagsOf<'worker'> & {
  /**
   * Whose per-command defaults apply (docs/worker.md, "Settings"): 'worker'
   * and 'up' log at info, 'up' serves metrics on 127.0.0.1:9464. Unset:
   * 'programmatic' (silent, no metrics server).
   */
  entryPoint?: EntryPoint;
};

/** GUC values as current_setting(name, true) returns them (null when unset). */
export type WorkerGucs = { [G in GucName]?: string | null };

/**
 * The table's settings a worker holds, each under its field name: the key,
 * then the parser's unit (pollInterval → pollIntervalMs, timeout →
 * timeoutSeconds, heartbeatTimeout → heartbeatTimeoutSeconds in whole
 * seconds). What each means: src/settings.ts, or docs/worker.md ("Settings").
 */
const WORKER_SETTING_KEYS = [
  'workerId',
  'concurrency',
  'pollInterval',
  'maxRetries',
  'timeout',
  'heartbeatInterval',
  'heartbeatTimeout',
  'retryBackoff',
  'retryBackoffMax',
  'shutdownGrace',
  'cacheEvictInterval',
  'resultRetention',
  'resultCleanupInterval',
  'resultCleanupBatchSize',
  'models',
  'engineModule',
  'threads',
  'batchEmbeddings',
  'embedBatchSize',
  'prefetch',
  'pipelines',
  'pipelineBatchSize',
  'logLevel',
  'metricsPort',
  'metricsHost',
  'gpu',
] as const satisfies readonly SettingKey[];

/** The settings every inference server shares (resolveServers). */
const SERVER_SETTING_KEYS = ['serverTimeout', 'serverMaxInFlight', 'serverRetries', 'serverRetryBackoff', 'serverEmbedBatchSize'] as const satisfies readonly SettingKey[];

export type WorkerSettings = Omit<SettingValues<(typeof WORKER_SETTING_KEYS)[number]>, 'workerId'> & {
  /** Passed to pg.Pool / pg.Client. */
  connection: pg.ClientConfig;
  /** `steadytext_workers.worker_id`; unset in the table: host-pid-random. */
  workerId: string;
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
  /** Roles served by inference servers; a role not here runs on the local engine. */
  servers: HttpBackends;
  /** Where each value came from (a flag, variable or GUC name); a setting not here has its default. */
  sources?: Partial<Record<SettingKey, string>>;
};

/** The programmatic defaults (the table's), under WorkerSettings' field names. */
export const DEFAULTS = fieldDefaults([...WORKER_SETTING_KEYS, ...SERVER_SETTING_KEYS]);

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
  const { values, sources } = resolveFields(WORKER_SETTING_KEYS, inputs);
  if (values.heartbeatTimeoutSeconds * 1000 <= values.heartbeatIntervalMs) {
    throw new SettingsError(
      `STEADYTEXT_WORKER_HEARTBEAT_TIMEOUT (${values.heartbeatTimeoutSeconds} s) must exceed STEADYTEXT_WORKER_HEARTBEAT_INTERVAL (${values.heartbeatIntervalMs / 1000} s)`,
    );
  }
  // The engine's own settings (STEADYTEXT_ENGINE_PARALLEL...): a bad value stops the worker here, before it connects.
  resolveEngineSettings({ models: flags.models, threads: flags.threads, gpu: flags.gpu }, env);

  return {
    connection: connection ?? resolveConnection(flags, env),
    ...values,
    workerId: values.workerId ?? defaultWorkerId(),
    servers: resolveServers(flags, env),
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
    const shared = resolveFields(SERVER_SETTING_KEYS, inputs).values;
    servers[role] = {
      url,
      dialect: dialect.value,
      model: resolveOne(SETTINGS[`${role}ServerModel`], inputs).value,
      apiKey,
      timeoutMs: shared.serverTimeoutMs,
      maxInFlight: shared.serverMaxInFlight,
      retries: shared.serverRetries,
      retryBackoffMs: shared.serverRetryBackoffMs,
      embedBatchSize: shared.serverEmbedBatchSize,
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
  const { readWorkerGucs } = await import('../db/workers/readWorkerGucs.ts');
  const { withRetries } = await import('../postgres/withRetries.ts');
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
