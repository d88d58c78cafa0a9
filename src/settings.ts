// Every setting of every entry point, in one table: its flag, environment
// variable, GUC, default, parser and meaning. `steadytext worker`, `up`,
// `doctor`, `models`, `dashboard`, the programmatic worker (startWorker) and
// the engine (loadEngine) all resolve their values here; none keeps a default
// of its own. Precedence, highest first: flag > environment > GUC > default.
// Where a command deliberately differs (`up` is interactive: it logs at info
// and serves /metrics on port 9464), the difference is a per-command
// default in this table, not a second code path. docs/worker.md ("Settings")
// holds this table as Markdown; test/docs/settings-table.test.ts keeps the two
// equal (`npx tsx test/docs/writeSettingsTable.ts` rewrites it). The types
// of flag objects (WorkerFlags), resolved settings (WorkerSettings) and GUC
// values are derived from the rows: each parser says what it returns and in
// which unit, and the unit ends the resolved field's name.
//
// No runtime imports from src/worker/ or src/engine/: both import this module.
import os from 'node:os';
import path from 'node:path';

/** Where settings are resolved: a CLI command, or a program calling startWorker/loadEngine. */
export type EntryPoint = 'worker' | 'up' | 'doctor' | 'models' | 'dashboard' | 'programmatic';

export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

// ---------------------------------------------------------------------------
// Parsers: raw text (or a number/boolean from a programmatic caller) in, a
// value out; errors name the flag, variable or GUC the value came from.

type Raw = string | number | boolean;

interface Parser<T> {
  parse(raw: Raw, name: string): T;
  /** The value as docs/worker.md writes it. */
  format(value: T): string;
  /** The unit of the number it returns; it ends the field's name in resolved settings (pollInterval → pollIntervalMs). */
  unit?: Unit;
}

/** Units a parser's numbers come in. */
type Unit = 'ms' | 'seconds';

interface UnitParser<T, U extends Unit> extends Parser<T> {
  unit: U;
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

export function parseInteger(value: Raw, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const text = String(value).trim();
  if (!/^-?\d+$/.test(text)) throw new SettingsError(`${name}: expected an integer, got '${text}'`);
  const n = Number(text);
  if (n < min) throw new SettingsError(`${name}: must be at least ${min}, got ${n}`);
  if (n > max) throw new SettingsError(`${name}: must be at most ${max}, got ${n}`);
  return n;
}

function formatMs(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${unit}`;
  }
  return ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
}

const integer = (min: number, max?: number): Parser<number> => ({
  parse: (raw, name) => parseInteger(raw, name, min, max),
  format: String,
});

const port = (min = 0): Parser<number> => ({
  parse(raw, name) {
    const text = String(raw).trim();
    if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > 65535) {
      throw new SettingsError(`${name}: must be a port (${min}-65535), got '${text}'`);
    }
    return Number(text);
  },
  format: String,
});

/** A duration in milliseconds; bare numbers are seconds. */
const duration = (): UnitParser<number, 'ms'> => ({ unit: 'ms', parse: (raw, name) => parseDuration(String(raw), name), format: formatMs });

/** A duration in seconds (fractional; bare numbers are seconds), where the value goes to a `*_seconds` column. */
const seconds = (): UnitParser<number, 'seconds'> => ({
  unit: 'seconds',
  parse: (raw, name) => parseDuration(String(raw), name) / 1000,
  format: (v) => formatMs(v * 1000),
});

/** A duration in whole seconds, rounded up. */
const wholeSeconds = (): UnitParser<number, 'seconds'> => ({
  ...seconds(),
  parse: (raw, name) => Math.ceil(parseDuration(String(raw), name) / 1000),
});

/** A duration in milliseconds, or 'off' / '0' for none. */
const durationOrOff = (): UnitParser<number | undefined, 'ms'> => ({
  unit: 'ms',
  parse: (raw, name) => (['off', '0'].includes(String(raw).trim().toLowerCase()) ? undefined : parseDuration(String(raw), name)),
  format: (v) => (v === undefined ? 'off' : formatMs(v)),
});

const oneOf = <T extends string>(values: readonly T[], expected: string): Parser<T> => ({
  parse(raw, name) {
    const v = String(raw).trim() as T;
    if (!values.includes(v)) throw new SettingsError(`${name}: expected ${expected}, got '${String(raw)}'`);
    return v;
  },
  format: (v) => v,
});

const boolean = (): Parser<boolean> => ({
  parse(raw, name) {
    if (typeof raw === 'boolean') return raw;
    const v = String(raw).trim().toLowerCase();
    if (!['0', '1', 'true', 'false', 'on', 'off'].includes(v)) throw new SettingsError(`${name}: expected true or false, got '${raw}'`);
    return ['1', 'true', 'on'].includes(v);
  },
  format: (v) => (v ? 'on' : 'off'),
});

const text = (): Parser<string> => ({ parse: (raw) => String(raw).trim(), format: (v) => v });

/** An http(s) URL without credentials, trailing slashes dropped. */
const httpUrl = (keyHint: string): Parser<string> => ({
  parse(raw, name) {
    const url = String(raw).trim();
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new SettingsError(`${name}: expected an http(s) URL, got '${url}'`);
    }
    if (!/^https?:$/.test(parsed.protocol)) throw new SettingsError(`${name}: expected an http(s) URL, got '${url}'`);
    if (parsed.username || parsed.password) throw new SettingsError(`${name}: put no credentials in the URL; use ${keyHint}`);
    return url.replace(/\/+$/, '');
  },
  format: (v) => v,
});

/** Comma-separated `name` or `name:port` entries (no scheme, no path), lowercased. */
const hostList = (): Parser<string[]> => ({
  parse(raw, name) {
    const entries = String(raw)
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean);
    for (const h of entries) {
      let ok = /^[^\s/?#@\\]+$/.test(h);
      try {
        ok &&= new URL(`http://${h}`).host === h.replace(/:80$/, '');
      } catch {
        ok = false;
      }
      if (!ok) throw new SettingsError(`${name}: expected host names such as dash.example.org or dash.example.org:8443, got '${h}'`);
    }
    return entries;
  },
  format: (v) => v.join(','),
});

/** A non-negative integer, or 'auto' (null). */
const countOrAuto = (): Parser<number | null> => ({
  parse: (raw, name) => (String(raw).trim().toLowerCase() === 'auto' ? null : parseInteger(raw, name, 0)),
  format: (v) => (v === null ? 'auto' : String(v)),
});

// ---------------------------------------------------------------------------
// The table.

export interface Setting<T = unknown> {
  /**
   * Property name in WorkerFlags / option objects (and the commander attribute,
   * unless `flag` says otherwise). In resolved settings (WorkerSettings) the
   * parser's unit follows it: pollInterval → pollIntervalMs (fieldName).
   */
  key: string;
  /** The CLI flag with its placeholder ('--concurrency <n>'), for the commands in `commands`. */
  flag?: string;
  env?: string;
  guc?: string;
  /** The value when nothing is set (a function: computed then). undefined: unset/off. */
  default: T | undefined | (() => T);
  /** Per-command defaults where a command deliberately differs. */
  commandDefaults?: Partial<Record<EntryPoint, T>>;
  /** How docs/worker.md writes the default, when the parser's format cannot (computed defaults). */
  defaultText?: string;
  parser: Parser<T>;
  /** Commands whose CLI takes the flag. */
  commands: readonly EntryPoint[];
  meaning: string;
  /** What the setting means besides, for one command only (in that command's --help, and in the docs' table). */
  commandNotes?: Partial<Record<EntryPoint, string>>;
  /** Never printed (API keys). */
  secret?: boolean;
}

const ALL_WORKERS = ['worker', 'up'] as const satisfies readonly EntryPoint[];
const SERVER_COMMANDS = ['worker', 'up', 'doctor'] as const satisfies readonly EntryPoint[];

/** What a parser returns. */
type Parsed<P> = P extends Parser<infer T> ? T : never;

/**
 * One row, its literal type kept (its key, commands, GUC and parser), so the
 * types of resolved settings and of flag objects are derived from the table;
 * the default must be what the parser returns.
 */
function setting<const S extends Setting<any>>(s: S & Setting<Parsed<S['parser']>>): S {
  return s;
}

export const MODEL_ROLES = ['generation', 'embedding', 'reranking'] as const;
export type Role = (typeof MODEL_ROLES)[number];
export const GPU_MODES = ['off', 'auto', 'cuda', 'vulkan'] as const;
export const HTTP_DIALECTS = ['llama-server', 'openai', 'ollama', 'tei'] as const;
export const LOG_LEVELS = ['silent', 'info', 'debug'] as const;

/** SteadyText's families: a small Qwen3 instruct model, Qwen3 embedding, Qwen3 reranker. */
export const DEFAULT_MODELS: Record<Role, string> = {
  generation: 'hf:Qwen/Qwen3-0.6B-GGUF/Qwen3-0.6B-Q8_0.gguf',
  embedding: 'hf:Qwen/Qwen3-Embedding-0.6B-GGUF/Qwen3-Embedding-0.6B-Q8_0.gguf',
  reranking: 'hf:ggml-org/Qwen3-Reranker-0.6B-Q8_0-GGUF/qwen3-reranker-0.6b-q8_0.gguf',
};

/** STEADYTEXT_<ROLE>_MODEL: a role's model of the default set, a local GGUF path or hf:owner/repo/file.gguf. */
function modelSetting<R extends Role>(role: R) {
  return setting({
    key: `${role}Model`,
    env: `STEADYTEXT_${role.toUpperCase()}_MODEL`,
    default: DEFAULT_MODELS[role],
    parser: text(),
    commands: [],
    meaning: `the ${role} model of the \`default\` set: a local GGUF path or \`hf:owner/repo/file.gguf\``,
  });
}

/** Per role: the inference server (URL, dialect, model, API key). */
function serverSettings<R extends Role>(role: R) {
  const ENV = `STEADYTEXT_${role.toUpperCase()}_SERVER`;
  const rows = {
    Server: setting({
      key: `${role}Server`,
      flag: `--${role}-server <url>`,
      env: ENV,
      default: undefined,
      defaultText: 'the local engine',
      parser: httpUrl(`${ENV}_API_KEY or ${ENV}_API_KEY_FILE`),
      commands: SERVER_COMMANDS,
      meaning: `serve ${role} from this inference server`,
    }),
    ServerDialect: setting({
      key: `${role}ServerDialect`,
      flag: `--${role}-server-dialect <dialect>`,
      env: `${ENV}_DIALECT`,
      default: 'llama-server',
      parser: oneOf(HTTP_DIALECTS, `one of ${HTTP_DIALECTS.join(', ')}`),
      commands: SERVER_COMMANDS,
      meaning: 'what that server speaks: `llama-server`, `openai` (vLLM, SGLang), `ollama` or `tei`',
    }),
    ServerModel: setting({
      key: `${role}ServerModel`,
      flag: `--${role}-server-model <name>`,
      env: `${ENV}_MODEL`,
      default: undefined,
      defaultText: 'the one it lists',
      parser: text(),
      commands: SERVER_COMMANDS,
      meaning: 'model name on that server',
    }),
    ServerApiKeyFile: setting({
      key: `${role}ServerApiKeyFile`,
      flag: `--${role}-server-api-key-file <file>`,
      env: `${ENV}_API_KEY_FILE`,
      default: undefined,
      parser: text(),
      commands: SERVER_COMMANDS,
      meaning: `file holding its API key (wins over \`${ENV}_API_KEY\`)`,
    }),
    ServerApiKey: setting({
      key: `${role}ServerApiKey`,
      env: `${ENV}_API_KEY`,
      default: undefined,
      parser: text(),
      commands: [],
      meaning: 'its API key (never logged or shown in a message)',
      secret: true,
    }),
  };
  // Keyed as in the table: generationServer, generationServerDialect, ...
  return Object.fromEntries(Object.entries(rows).map(([suffix, row]) => [`${role}${suffix}`, row])) as {
    [K in keyof typeof rows as `${R}${K}`]: (typeof rows)[K];
  };
}

export const SETTINGS = {
  // Connection. --database-url and --db-* exclude each other (resolveConnection).
  databaseUrl: setting({
    key: 'databaseUrl',
    flag: '--database-url <url>',
    env: 'DATABASE_URL',
    default: undefined,
    parser: text(),
    commands: ['worker', 'up', 'doctor', 'dashboard'],
    meaning: 'PostgreSQL connection URL',
    commandNotes: { up: '`up` without one starts an embedded PostgreSQL' },
  }),
  dbHost: setting({
    key: 'dbHost',
    flag: '--db-host <host>',
    env: 'PGHOST',
    default: 'localhost',
    parser: text(),
    commands: ['worker'],
    meaning: 'database host, instead of a URL (the spec\'s worker flags); the PG* variables count only with a --db-* flag or when nothing else is given',
  }),
  dbPort: setting({
    key: 'dbPort',
    flag: '--db-port <port>',
    env: 'PGPORT',
    default: 5432,
    parser: integer(1),
    commands: ['worker'],
    meaning: 'database port',
  }),
  dbName: setting({ key: 'dbName', flag: '--db-name <name>', env: 'PGDATABASE', default: undefined, parser: text(), commands: ['worker'], meaning: 'database name' }),
  dbUser: setting({ key: 'dbUser', flag: '--db-user <user>', env: 'PGUSER', default: undefined, parser: text(), commands: ['worker'], meaning: 'database user' }),
  dbPassword: setting({
    key: 'dbPassword',
    flag: '--db-password <password>',
    env: 'PGPASSWORD',
    default: undefined,
    parser: text(),
    commands: ['worker'],
    meaning: 'database password',
    secret: true,
  }),

  // The worker.
  concurrency: setting({
    key: 'concurrency',
    flag: '--concurrency <n>',
    env: 'STEADYTEXT_WORKER_CONCURRENCY',
    guc: 'steadytext.worker_concurrency',
    default: 1,
    parser: integer(1),
    commands: ALL_WORKERS,
    meaning: 'jobs run at once',
  }),
  pollInterval: setting({
    key: 'pollInterval',
    flag: '--poll-interval <seconds>',
    env: 'STEADYTEXT_WORKER_POLL_INTERVAL',
    guc: 'steadytext.worker_poll_interval',
    default: 1000,
    parser: duration(),
    commands: ['worker'],
    meaning: 'fallback poll when no NOTIFY arrives',
  }),
  maxRetries: setting({
    key: 'maxRetries',
    flag: '--max-retries <n>',
    env: 'STEADYTEXT_WORKER_MAX_RETRIES',
    guc: 'steadytext.worker_max_retries',
    default: 3,
    parser: integer(0),
    commands: ['worker'],
    meaning: 'retries of a failing job when the request sets none',
  }),
  timeout: setting({
    key: 'timeout',
    flag: '--timeout <seconds>',
    env: 'STEADYTEXT_WORKER_TIMEOUT',
    guc: 'steadytext.worker_timeout',
    default: 300,
    parser: seconds(),
    commands: ['worker'],
    meaning: 'per-job time limit when the request sets none',
  }),
  heartbeatInterval: setting({
    key: 'heartbeatInterval',
    flag: '--heartbeat-interval <seconds>',
    env: 'STEADYTEXT_WORKER_HEARTBEAT_INTERVAL',
    default: 2000,
    parser: duration(),
    commands: ['worker'],
    meaning: 'heartbeat period (also how often stale workers are reclaimed)',
  }),
  heartbeatTimeout: setting({
    key: 'heartbeatTimeout',
    flag: '--heartbeat-timeout <seconds>',
    env: 'STEADYTEXT_WORKER_HEARTBEAT_TIMEOUT',
    default: 10,
    parser: wholeSeconds(),
    commands: ['worker'],
    meaning: "silence after which other workers reclaim this one's jobs (whole seconds, above the interval)",
  }),
  retryBackoff: setting({
    key: 'retryBackoff',
    flag: '--retry-backoff <seconds>',
    env: 'STEADYTEXT_WORKER_RETRY_BACKOFF',
    default: 1000,
    parser: duration(),
    commands: ['worker'],
    meaning: 'delay before the first retry, doubled for each further one',
  }),
  retryBackoffMax: setting({
    key: 'retryBackoffMax',
    flag: '--retry-backoff-max <seconds>',
    env: 'STEADYTEXT_WORKER_RETRY_BACKOFF_MAX',
    default: 60_000,
    parser: duration(),
    commands: ['worker'],
    meaning: 'longest retry delay',
  }),
  shutdownGrace: setting({
    key: 'shutdownGrace',
    flag: '--shutdown-grace <seconds>',
    env: 'STEADYTEXT_WORKER_SHUTDOWN_GRACE',
    default: 30_000,
    parser: duration(),
    commands: ['worker'],
    meaning: 'on SIGTERM, how long running jobs may finish before they are released',
  }),
  cacheEvictInterval: setting({
    key: 'cacheEvictInterval',
    flag: '--cache-evict-interval <seconds>',
    env: 'STEADYTEXT_WORKER_CACHE_EVICT_INTERVAL',
    default: 60_000,
    parser: duration(),
    commands: ['worker'],
    meaning: 'how often `steadytext_cache_evict()` runs',
  }),
  resultRetention: setting({
    key: 'resultRetention',
    flag: '--result-retention <age>',
    env: 'STEADYTEXT_WORKER_RESULT_RETENTION',
    default: undefined,
    defaultText: 'off',
    parser: durationOrOff(),
    commands: ['worker'],
    meaning: "delete completed, failed and cancelled requests older than this (e.g. `7d`, `12h`; `off`)",
  }),
  resultCleanupInterval: setting({
    key: 'resultCleanupInterval',
    env: 'STEADYTEXT_WORKER_RESULT_CLEANUP_INTERVAL',
    default: 300_000,
    parser: duration(),
    commands: [],
    meaning: 'how often the result retention runs, when on',
  }),
  resultCleanupBatchSize: setting({
    key: 'resultCleanupBatchSize',
    env: 'STEADYTEXT_WORKER_RESULT_CLEANUP_BATCH_SIZE',
    default: 10_000,
    parser: integer(1, 100_000),
    commands: [],
    meaning: 'rows the retention deletes per statement (at most 100000)',
  }),
  batchEmbeddings: setting({
    key: 'batchEmbeddings',
    flag: '--no-batch-embeddings',
    env: 'STEADYTEXT_WORKER_BATCH_EMBEDDINGS',
    default: true,
    parser: boolean(),
    commands: ['worker'],
    meaning: 'claimed embed jobs share one engine call (the flag turns it off)',
  }),
  embedBatchSize: setting({
    key: 'embedBatchSize',
    flag: '--embed-batch-size <n>',
    env: 'STEADYTEXT_WORKER_EMBED_BATCH_SIZE',
    default: 32,
    parser: integer(1),
    commands: ['worker'],
    meaning: 'most embed jobs in one engine call, gathered across claims',
  }),
  pipelines: setting({
    key: 'pipelines',
    flag: '--no-pipelines',
    env: 'STEADYTEXT_WORKER_PIPELINES',
    default: true,
    parser: boolean(),
    commands: ['worker'],
    meaning: 'compute pipelines (docs/pipelines.md) in engine slots the queue leaves free (the flag: queue jobs only)',
  }),
  pipelineBatchSize: setting({
    key: 'pipelineBatchSize',
    flag: '--pipeline-batch-size <n>',
    env: 'STEADYTEXT_WORKER_PIPELINE_BATCH_SIZE',
    default: 32,
    parser: integer(1, 10_000),
    commands: ['worker'],
    meaning: "most pipeline rows in one batch (one engine call for embed; a pipeline's own batch_size may lower it)",
  }),
  prefetch: setting({
    key: 'prefetch',
    flag: '--prefetch <n|auto>',
    env: 'STEADYTEXT_WORKER_PREFETCH',
    default: null,
    parser: countOrAuto(),
    commands: ['worker'],
    meaning: 'jobs claimed ahead beyond those running; `auto`: about 50 ms of work, at least the concurrency, at most 256',
  }),
  workerId: setting({
    key: 'workerId',
    flag: '--worker-id <id>',
    env: 'STEADYTEXT_WORKER_ID',
    default: undefined,
    defaultText: '`host-pid-random`',
    parser: text(),
    commands: ['worker'],
    meaning: '`steadytext_workers.worker_id`',
  }),
  logLevel: setting({
    key: 'logLevel',
    flag: '--log-level <level>',
    env: 'STEADYTEXT_WORKER_LOG_LEVEL',
    default: 'silent',
    commandDefaults: { worker: 'info', up: 'info' },
    parser: oneOf(LOG_LEVELS, 'silent, info or debug'),
    commands: ALL_WORKERS,
    meaning: 'worker log lines on stderr: `silent`, `info`, or `debug` (one line per job)',
  }),
  metricsPort: setting({
    key: 'metricsPort',
    flag: '--metrics-port <port>',
    env: 'STEADYTEXT_WORKER_METRICS_PORT',
    default: undefined,
    commandDefaults: { up: 9464 },
    defaultText: 'off',
    parser: port(0),
    commands: ALL_WORKERS,
    meaning: 'serve Prometheus `/metrics` and `/health` on this port, `0` for any free one (`up`: a free one when the default is taken)',
  }),
  metricsHost: setting({
    key: 'metricsHost',
    flag: '--metrics-host <address>',
    env: 'STEADYTEXT_WORKER_METRICS_HOST',
    default: '127.0.0.1',
    parser: text(),
    commands: ALL_WORKERS,
    meaning: "address the metrics server binds; `/metrics` counts every tenant's requests and `/health` has no login, so keep it on loopback or behind your own auth (docs/security.md)",
  }),

  // The engine (local models).
  models: setting({
    key: 'models',
    flag: '--models <set>',
    env: 'STEADYTEXT_MODELS',
    default: 'default',
    parser: oneOf(['default', 'tiny'] as const, "'default' or 'tiny'"),
    commands: ['worker', 'up', 'doctor', 'models'],
    meaning: 'model set: `default` (real GGUFs) or `tiny` (self-written test models)',
  }),
  engineModule: setting({
    key: 'engineModule',
    flag: '--engine-module <path>',
    env: 'STEADYTEXT_ENGINE_MODULE',
    default: undefined,
    defaultText: 'the llama engine',
    parser: text(),
    commands: ['worker'],
    meaning: 'a module whose default export is an EngineFactory (tests, benchmarks)',
  }),
  threads: setting({
    key: 'threads',
    flag: '--threads <n>',
    env: 'STEADYTEXT_THREADS',
    default: 1,
    parser: integer(1),
    commands: ['worker'],
    meaning: 'CPU threads per model context (1 is fastest for small models on small boxes, docs/engine.md)',
  }),
  gpu: setting({
    key: 'gpu',
    flag: '--gpu <mode>',
    env: 'STEADYTEXT_GPU',
    default: 'off',
    parser: oneOf(GPU_MODES, 'off, auto, cuda or vulkan'),
    commands: ALL_WORKERS,
    meaning: 'local engine device: `off` (CPU), `auto` (a GPU when node-llama-cpp can load one), `cuda`, `vulkan`; the device is appended to the model id (`...@cuda`)',
  }),
  parallel: setting({
    key: 'parallel',
    env: 'STEADYTEXT_ENGINE_PARALLEL',
    default: 2,
    parser: integer(1),
    commands: [],
    meaning: 'jobs of one role the local engine runs at once (generation: sequences; embedding/reranking: contexts)',
  }),
  contexts: setting({
    key: 'contexts',
    env: 'STEADYTEXT_ENGINE_CONTEXTS',
    default: undefined,
    defaultText: '= `STEADYTEXT_ENGINE_PARALLEL`',
    parser: integer(1),
    commands: [],
    meaning: 'generation contexts the parallel sequences are spread over (at most the parallel; fewer batch several jobs per decode step)',
  }),
  modelDir: setting({
    key: 'modelDir',
    flag: '--model-dir <dir>',
    env: 'STEADYTEXT_MODEL_DIR',
    default: () => path.join(os.homedir(), '.cache', 'steadytext', 'models'),
    defaultText: '`~/.cache/steadytext/models`',
    parser: text(),
    commands: ['models'],
    meaning: 'model cache dir (hf files land here under their file name; tiny models too)',
  }),
  allowDownload: setting({
    key: 'allowDownload',
    env: 'STEADYTEXT_ALLOW_DOWNLOAD',
    default: false,
    parser: boolean(),
    commands: [],
    meaning: 'let the engine download a missing hf model on first use (else it fails naming `steadytext models pull`)',
  }),
  generationModel: modelSetting('generation'),
  embeddingModel: modelSetting('embedding'),
  rerankingModel: modelSetting('reranking'),
  hubEndpoint: setting({
    key: 'hubEndpoint',
    env: 'HF_ENDPOINT',
    default: 'https://huggingface.co',
    parser: text(),
    commands: [],
    meaning: 'the hub models are downloaded from: a mirror, or a local server with the hub\'s URL layout',
  }),
  hubToken: setting({
    key: 'hubToken',
    env: 'HF_TOKEN',
    default: undefined,
    parser: text(),
    commands: [],
    meaning: 'bearer token for the hub (gated or private models)',
    secret: true,
  }),

  // Inference servers (docs/engine.md, "Inference servers").
  ...serverSettings('generation'),
  ...serverSettings('embedding'),
  ...serverSettings('reranking'),
  serverTimeout: setting({
    key: 'serverTimeout',
    flag: '--server-timeout <seconds>',
    env: 'STEADYTEXT_SERVER_TIMEOUT',
    default: 120_000,
    parser: duration(),
    commands: SERVER_COMMANDS,
    meaning: 'one request to an inference server',
  }),
  serverMaxInFlight: setting({
    key: 'serverMaxInFlight',
    flag: '--server-max-in-flight <n>',
    env: 'STEADYTEXT_SERVER_MAX_IN_FLIGHT',
    default: 4,
    parser: integer(1),
    commands: SERVER_COMMANDS,
    meaning: 'requests to each server at once',
  }),
  serverRetries: setting({
    key: 'serverRetries',
    flag: '--server-retries <n>',
    env: 'STEADYTEXT_SERVER_RETRIES',
    default: 3,
    parser: integer(0),
    commands: SERVER_COMMANDS,
    meaning: 'retries on 429, 5xx, timeouts and connection errors',
  }),
  serverRetryBackoff: setting({
    key: 'serverRetryBackoff',
    flag: '--server-retry-backoff <seconds>',
    env: 'STEADYTEXT_SERVER_RETRY_BACKOFF',
    default: 500,
    parser: duration(),
    commands: SERVER_COMMANDS,
    meaning: 'first retry delay, doubled each time',
  }),
  serverEmbedBatchSize: setting({
    key: 'serverEmbedBatchSize',
    flag: '--server-embed-batch-size <n>',
    env: 'STEADYTEXT_SERVER_EMBED_BATCH_SIZE',
    default: 64,
    parser: integer(1),
    commands: SERVER_COMMANDS,
    meaning: 'texts per embeddings request',
  }),

  // `steadytext up`'s embedded PostgreSQL.
  pgPort: setting({
    key: 'pgPort',
    flag: '--port <port>',
    env: 'STEADYTEXT_PG_PORT',
    default: 5433,
    parser: port(1),
    commands: ['up'],
    meaning: 'embedded PostgreSQL port (`up` without a database URL)',
  }),
  dataDir: setting({
    key: 'dataDir',
    flag: '--data-dir <dir>',
    env: 'STEADYTEXT_DATA_DIR',
    default: '.steadytext',
    defaultText: '`./.steadytext` (as root, when the postgres user cannot reach it, `/var/tmp/steadytext-pg-<hash>/`)',
    parser: text(),
    commands: ['up'],
    meaning: 'embedded PostgreSQL data directory',
  }),
  startWorker: setting({
    key: 'startWorker',
    flag: '--no-worker',
    default: true,
    parser: boolean(),
    commands: ['up'],
    meaning: '`up` starts a worker (the flag: the database only)',
  }),

  // `steadytext dashboard`.
  dashboardPort: setting({
    key: 'dashboardPort',
    flag: '--port <port>',
    env: 'STEADYTEXT_DASHBOARD_PORT',
    default: 8787,
    parser: port(0),
    commands: ['dashboard'],
    meaning: 'dashboard HTTP port, `0` for any free one',
  }),
  dashboardHost: setting({
    key: 'dashboardHost',
    flag: '--host <address>',
    default: '127.0.0.1',
    parser: text(),
    commands: ['dashboard'],
    meaning: 'address the dashboard binds; it can retry jobs, so keep it local unless behind auth',
  }),
  dashboardAllowedHosts: setting({
    key: 'dashboardAllowedHosts',
    flag: '--allowed-hosts <names>',
    env: 'STEADYTEXT_DASHBOARD_ALLOWED_HOSTS',
    default: undefined,
    defaultText: 'its own address only',
    parser: hostList(),
    commands: ['dashboard'],
    meaning: 'more names the dashboard answers to in `Host`, comma-separated (`name` any port, `name:port`): the name a reverse proxy forwards. Any other Host gets 403 (DNS rebinding)',
  }),
  sampleInterval: setting({
    key: 'sampleInterval',
    flag: '--sample-interval <seconds>',
    default: 2000,
    parser: duration(),
    commands: ['dashboard'],
    meaning: 'how often the dashboard samples queue depth for its chart',
  }),
};

export type SettingKey = keyof typeof SETTINGS;
type Row<K extends SettingKey> = (typeof SETTINGS)[K];

/** What a setting resolves to: its parser's output, or undefined where it has no default. */
export type SettingValue<S> = S extends Setting<any> ? Parsed<S['parser']> | (undefined extends S['default'] ? undefined : never) : never;

/** The names a value may come from: flag, environment variable, GUC. */
export interface SettingInputs {
  /** Keyed by Setting.key (WorkerFlags, or an option object from flagsFromOptions). */
  flags?: object;
  env?: NodeJS.ProcessEnv;
  /** GUC values as current_setting(name, true) returns them (null when unset). */
  gucs?: object;
  /** Whose per-command defaults apply; unset: 'programmatic'. */
  entry?: EntryPoint;
}

export interface Resolved<T> {
  value: T;
  /** The flag, variable or GUC it came from; undefined: the default. */
  source?: string;
}

const isSet = (v: unknown): v is Raw => v !== undefined && v !== null && String(v).trim() !== '';

/** The flag's name without its placeholder: '--concurrency'. */
export function flagName(s: Setting): string | undefined {
  return s.flag?.split(' ')[0];
}

/** The default of a setting for an entry point. */
export function defaultOf<S extends Setting<any>>(s: S, entry: EntryPoint = 'programmatic'): SettingValue<S> {
  if (s.commandDefaults && entry in s.commandDefaults) return s.commandDefaults[entry];
  return typeof s.default === 'function' ? s.default() : s.default;
}

/** One setting: flag > environment > GUC > (per-command) default, parsed. */
export function resolveOne<S extends Setting<any>>(s: S, inputs: SettingInputs = {}): Resolved<SettingValue<S>> {
  const flagValue = (inputs.flags as Record<string, unknown> | undefined)?.[s.key];
  if (isSet(flagValue)) {
    const name = flagName(s) ?? s.key;
    return { value: s.parser.parse(flagValue, name), source: name };
  }
  const env = inputs.env ?? process.env;
  if (s.env && isSet(env[s.env])) return { value: s.parser.parse(env[s.env]!, s.env), source: s.env };
  const guc = s.guc && (inputs.gucs as Record<string, string | null | undefined> | undefined)?.[s.guc];
  if (s.guc && isSet(guc)) return { value: s.parser.parse(guc, s.guc), source: s.guc };
  return { value: defaultOf(s, inputs.entry) };
}

/** Every setting at once, for one entry point: values and where each came from. */
export function resolveAll(inputs: SettingInputs = {}): {
  values: { [K in SettingKey]: SettingValue<Row<K>> };
  sources: Partial<Record<SettingKey, string>>;
} {
  const values = {} as Record<string, unknown>;
  const sources: Partial<Record<SettingKey, string>> = {};
  for (const [key, s] of Object.entries(SETTINGS) as [SettingKey, Setting][]) {
    const r = resolveOne(s, inputs);
    values[key] = r.value;
    if (r.source) sources[key] = r.source;
  }
  return { values: values as never, sources };
}

// ---------------------------------------------------------------------------
// Resolved settings and flag objects, typed from the table.

/**
 * A setting's field in resolved settings (WorkerSettings): its key, then its
 * parser's unit: pollInterval → pollIntervalMs, timeout → timeoutSeconds.
 */
export type FieldName<K extends SettingKey> = `${K}${Row<K>['parser'] extends { unit: infer U extends string } ? Capitalize<U> : ''}`;

export function fieldName<K extends SettingKey>(key: K): FieldName<K> {
  const unit = (SETTINGS[key] as Setting).parser.unit;
  return (unit ? `${key}${unit[0].toUpperCase()}${unit.slice(1)}` : key) as FieldName<K>;
}

/** Fields that may be undefined are optional. */
type OptionalWhereUndefined<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: T[K];
};

/** Some settings, resolved, each under its field name. */
export type SettingValues<K extends SettingKey> = OptionalWhereUndefined<{ [P in K as FieldName<P>]: SettingValue<Row<P>> }>;

/** Resolves some settings: each value under its field name, and where each came from (keyed by Setting.key). */
export function resolveFields<K extends SettingKey>(
  keys: readonly K[],
  inputs: SettingInputs = {},
): { values: SettingValues<K>; sources: Partial<Record<K, string>> } {
  const values = {} as Record<string, unknown>;
  const sources: Partial<Record<K, string>> = {};
  for (const key of keys) {
    const r = resolveOne(SETTINGS[key] as Setting, inputs);
    values[fieldName(key)] = r.value;
    if (r.source) sources[key] = r.source;
  }
  return { values: values as SettingValues<K>, sources };
}

/** The programmatic defaults of some settings, each under its field name. */
export function fieldDefaults<K extends SettingKey>(keys: readonly K[]): SettingValues<K> {
  return Object.fromEntries(keys.map((key) => [fieldName(key), defaultOf(SETTINGS[key] as Setting)])) as SettingValues<K>;
}

/** What a program may pass where a flag goes: text, or the number or boolean it stands for. */
type FlagInput<V> = [NonNullable<V>] extends [boolean] ? boolean : [NonNullable<V>] extends [string | string[]] ? string : string | number;

/** The flags of a command, keyed by Setting.key, every one optional: what a program may pass instead. */
export type FlagsOf<E extends EntryPoint> = {
  [K in SettingKey as E extends Row<K>['commands'][number] ? K : never]?: FlagInput<SettingValue<Row<K>>>;
};

/** The GUCs the table names (steadytext.worker_*). */
export type GucName = { [K in SettingKey]: Row<K> extends { guc: infer G extends string } ? G : never }[SettingKey];

/** The GUCs the worker reads at start. */
export const GUC_NAMES = Object.values(SETTINGS as Record<string, Setting>)
  .map((s) => s.guc)
  .filter((g): g is string => g !== undefined) as GucName[];

// ---------------------------------------------------------------------------
// The CLI: the flags of each command and their help text come from the table.

/** commander's attribute for a flag: '--db-host <h>' → dbHost, '--no-worker' → worker. */
function attributeOf(flag: string): string {
  return flagName({ flag } as Setting)!
    .replace(/^--(no-)?/, '')
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function helpText(s: Setting, entry: EntryPoint): string {
  const where = [s.env && `$${s.env}`, s.guc].filter(Boolean).join(', ');
  const dflt = s.flag?.startsWith('--no-') || defaultText(s, entry) === 'unset' ? undefined : defaultText(s, entry);
  const meaning = [s.meaning, s.commandNotes?.[entry]].filter(Boolean).join('; ');
  return `${meaning.replace(/`/g, '')}${where || dflt ? ` (${[where, dflt && `default ${dflt.replace(/`/g, '')}`].filter(Boolean).join('; ')})` : ''}`;
}

/** The settings a command takes as flags, in table order. */
export function commandSettings(entry: EntryPoint): Setting[] {
  return (Object.values(SETTINGS) as Setting[]).filter((s) => s.flag && s.commands.includes(entry));
}

/** Adds a command's flags (from the table) to a commander command. */
export function addSettingOptions<C extends { option(flags: string, description: string): C }>(cmd: C, entry: EntryPoint): C {
  for (const s of commandSettings(entry)) cmd = cmd.option(s.flag!, helpText(s, entry));
  return cmd;
}

/**
 * commander's option object → flags keyed by Setting.key, for the command's
 * settings only; a --no-x flag counts only when given.
 */
export function flagsFromOptions(opts: Record<string, unknown>, entry: EntryPoint): Record<string, Raw> {
  const flags: Record<string, Raw> = {};
  for (const s of commandSettings(entry)) {
    const v = opts[attributeOf(s.flag!)];
    if (v === undefined || (s.flag!.startsWith('--no-') && v === true)) continue;
    flags[s.key] = v as Raw;
  }
  return flags;
}

// ---------------------------------------------------------------------------
// docs/worker.md's table.

/** The default as the docs and --help write it, for an entry point. */
function defaultText(s: Setting, entry: EntryPoint = 'programmatic'): string {
  const perCommand = s.commandDefaults && entry in s.commandDefaults;
  if (s.defaultText !== undefined && !perCommand) return s.defaultText;
  const v = defaultOf(s, entry);
  if (v === undefined) return 'unset';
  return typeof v === 'string' ? `\`${s.parser.format(v as never)}\`` : s.parser.format(v as never);
}

const cell = (text: string | undefined) => (text ? text.replaceAll('|', '\\|') : '');

/** The Markdown table of every setting (docs/worker.md, "Settings"). */
export function settingsTable(): string {
  const rows = ['| flag (commands) | environment | GUC | default | meaning |', '|---|---|---|---|---|'];
  for (const s of Object.values(SETTINGS) as Setting[]) {
    const flag = s.flag ? `\`${s.flag}\` (${s.commands.join(', ')})` : '';
    const perCommand = Object.keys(s.commandDefaults ?? {}).map((entry) => `\`${entry}\`: ${defaultText(s, entry as EntryPoint)}`);
    const defaults = [defaultText(s), ...perCommand].join('; ');
    const meaning = [s.meaning, ...Object.values(s.commandNotes ?? {})].join('; ');
    rows.push(`| ${cell(flag)} | ${cell(s.env && `\`${s.env}\``)} | ${cell(s.guc && `\`${s.guc}\``)} | ${cell(defaults)} | ${cell(meaning)} |`);
  }
  return rows.join('\n');
}

// ---------------------------------------------------------------------------
// The engine's settings (src/engine/modelSources.ts wraps this as its
// resolveSettings; the worker resolves the same at start, so a bad value stops
// it before it connects).

export interface EngineSettingValues {
  models: 'default' | 'tiny';
  modelDir: string;
  threads: number;
  allowDownload: boolean;
  /** How many jobs of one role run at once (generation: sequences; embedding/reranking: contexts). */
  parallel: number;
  /** Generation contexts the `parallel` sequences are spread over (at most `parallel`). */
  contexts: number;
  gpu: (typeof GPU_MODES)[number];
  /** Each role's model of the default set: a path or hf:owner/repo/file.gguf. */
  modelReferences: Record<Role, string>;
  hubEndpoint: string;
  hubToken?: string;
}

/** Values a program passes to the engine (loadEngine options) count as flags. */
export interface EngineOptions {
  models?: 'default' | 'tiny' | string;
  threads?: number | string;
  modelDir?: string;
  parallel?: number | string;
  contexts?: number | string;
  gpu?: string;
}

export function resolveEngineSettings(opts: EngineOptions = {}, env: NodeJS.ProcessEnv = process.env): EngineSettingValues {
  const inputs: SettingInputs = { flags: opts, env };
  const get = <K extends SettingKey>(key: K) => resolveOne(SETTINGS[key], inputs).value;
  const parallel = get('parallel');
  const contexts = get('contexts') ?? parallel;
  const hubToken = get('hubToken');
  return {
    models: get('models'),
    modelDir: get('modelDir'),
    threads: get('threads'),
    allowDownload: get('allowDownload'),
    parallel,
    contexts: Math.min(contexts, parallel),
    gpu: get('gpu'),
    modelReferences: { generation: get('generationModel'), embedding: get('embeddingModel'), reranking: get('rerankingModel') },
    hubEndpoint: get('hubEndpoint').replace(/\/+$/, ''),
    ...(hubToken ? { hubToken } : {}),
  };
}
