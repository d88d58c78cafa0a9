// The job types: one entry per value of steadytext_queue.function_name, the
// one definition the rest is derived from.
//
//   TypeScript  FunctionName, JobParameters (src/interfaces.ts), the model
//               role a worker looks up (worker.ts, metrics.ts, httpEngine.ts),
//               how the worker writes a result and the client reads it.
//   SQL         `-- @job-types <fragment>` lines in sql/src/ are expanded
//               from this catalog by `npm run build:sql`
//               (src/db/schema/jobTypesSql.ts): each function's arguments, model
//               role, cache-key arguments and batch form.
//
// The public SQL functions themselves (steadytext_<name>_async, the sync
// steadytext_<name>, the *_batch_async forms) stay hand-written in
// sql/src/50-async-functions.sql and 80-sync.sql, with their documentation;
// test/sql/job-types.test.ts fails when their arguments, defaults or result
// types, the steadytext_queue.function_name CHECK, or any generated helper
// differ from this catalog.
//
// Adding a job type: an entry here, its public SQL functions, its engine call
// (src/worker/execute.ts's RUN table, which the compiler holds to this
// catalog), and the CHECK's list in an upgrade script.
//
// Imports nothing: the client package (packages/client) compiles it with
// src/client/ and src/interfaces.ts alone.

/** Which model serves a job. */
export type ModelRole = 'generation' | 'embedding' | 'reranking';

/** One reranked document, as the rerank job's JSON result lists them (best first). */
export interface RankedDocument {
  document: string;
  score: number;
  /** Position of the document in the `documents` argument. */
  index: number;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export const DEFAULT_MAX_TOKENS = 512;
export const DEFAULT_SEED = 42;
/** Qwen3-Reranker's own instruction, and SteadyText's default rerank task. */
export const DEFAULT_RERANK_TASK = 'Given a web search query, retrieve relevant passages that answer the query';

/** An argument's SQL type, and the JSON value steadytext_queue.parameters holds for it. */
export interface SqlValues {
  text: string;
  integer: number;
  boolean: boolean;
  jsonb: unknown;
  'text[]': string[];
}
export type SqlType = keyof SqlValues;

/** One argument of a job type's public SQL functions (and a key of its parameters). */
export interface JobArgument {
  name: string;
  sqlType: SqlType;
  /** The SQL default; none: the argument is required. */
  default?: string | number | boolean;
  /** False for the one argument that does not change the output (use_cache): left out of the cache key. */
  inCacheKey?: false;
}

/**
 * How steadytext_queue.result (text) holds a job type's value: `write` is the
 * worker's, `read` the client's; `syncSqlType` is what the synchronous SQL
 * function returns for it, and `syncSql` turns the result text (an SQL
 * expression) into that.
 */
export const RESULT_FORMATS = {
  /** The text itself. */
  text: {
    write: (v: string): string => v,
    read: (text: string): string => text,
    syncSqlType: 'text',
    syncSql: (result: string): string => `SELECT ${result}`,
  },
  /** A JSON document, as text. */
  json: {
    write: (v: JsonValue): string => JSON.stringify(v),
    read: (text: string): JsonValue => JSON.parse(text) as JsonValue,
    syncSqlType: 'text',
    syncSql: (result: string): string => `SELECT ${result}`,
  },
  /**
   * pgvector's text form `[0.1,0.2,...]` (L2-normalised), which is also a
   * JSON array; steadytext_embedding(uuid) and the sync function give real[].
   */
  vector: {
    write: (v: number[]): string => `[${v.join(',')}]`,
    read: (text: string): number[] => JSON.parse(text) as number[],
    syncSqlType: 'real[]',
    syncSql: (result: string): string => `SELECT translate(${result}, '[]', '{}')::real[]`,
  },
  /** JSON `[{"document","score","index"}]`, best first; the sync function gives rows (document, score). */
  ranked: {
    write: (v: RankedDocument[]): string => JSON.stringify(v),
    read: (text: string): RankedDocument[] => JSON.parse(text) as RankedDocument[],
    syncSqlType: 'TABLE(document text, score double precision)',
    syncSql: (result: string): string =>
      `SELECT e.value ->> 'document', (e.value ->> 'score')::double precision\n` +
      `FROM jsonb_array_elements((${result})::jsonb) WITH ORDINALITY AS e(value, ord)\n` +
      `ORDER BY e.ord`,
  },
} as const;
export type ResultFormat = keyof typeof RESULT_FORMATS;

/** One job type. Its public SQL functions are steadytext_<name>_async and steadytext_<name>. */
export interface JobType {
  modelRole: ModelRole;
  /**
   * What the public SQL functions' comments say (the build writes the
   * functions from this entry: src/db/schema/publicFunctionsSql.ts): the
   * async form's result and errors, the sync form's, and the batch form's.
   */
  doc: { async: string; sync: string; batch?: string };
  /** In the public functions' order (the async form adds `priority` last); every one is a key of parameters. */
  args: readonly JobArgument[];
  result: ResultFormat;
  /**
   * The batch form steadytext_<name>_batch_async, where there is one: its
   * array argument (`argument`, first) stands for `item`, one request per
   * element; the other arguments are the job type's.
   */
  batch?: { item: string; argument: string };
  /**
   * The argument a pipeline's input fills (docs/pipelines.md), for the types
   * a pipeline may run: each source row's input becomes this argument, the
   * pipeline's parameters the others.
   */
  pipelineInput?: string;
}

const prompt = { name: 'prompt', sqlType: 'text' } as const;
const maxTokens = { name: 'max_tokens', sqlType: 'integer', default: DEFAULT_MAX_TOKENS } as const;
const useCache = { name: 'use_cache', sqlType: 'boolean', default: true, inCacheKey: false } as const;
const seed = { name: 'seed', sqlType: 'integer', default: DEFAULT_SEED } as const;

export const JOB_TYPES = {
  generate: {
    doc: {
      async: 'Returns the new request\'s id. Raises 22004/22023/54000 for bad arguments, 54000 when steadytext.max_queue_size is reached.',
      sync: 'The generated text. Raises as steadytext_generate_async for bad arguments, and as described above.',
      batch: 'Returns one request id per prompt, in prompt order (\'{}\' for an empty array); the requests share one batch_id. Every prompt is validated before anything is written: NULL array or prompt -> 22004, empty prompt -> 22023, more than max_batch_items or a prompt over max_prompt_bytes -> 54000.',
    },
    modelRole: 'generation',
    args: [prompt, maxTokens, useCache, seed],
    result: 'text',
    batch: { item: 'prompt', argument: 'prompts' },
    pipelineInput: 'prompt',
  },
  generate_json: {
    doc: {
      async: 'Returns the new request\'s id (result: a JSON document matching schema). Raises 0A000 for $ref, 54000 for a too big / too deep schema, 22023 for a malformed one, and as steadytext_generate_async for the rest.',
      sync: 'The JSON document (text) matching schema. Raises as steadytext_generate_json_async for bad arguments.',
    },
    modelRole: 'generation',
    args: [prompt, { name: 'schema', sqlType: 'jsonb' }, maxTokens, useCache, seed],
    result: 'json',
    pipelineInput: 'prompt',
  },
  generate_regex: {
    doc: {
      async: 'Returns the new request\'s id (result: text matching pattern in full). Raises 22023 for a malformed pattern or a max_tokens below its shortest match, 0A000 for constructs outside the supported dialect (backreferences, lookaround, word boundaries, lazy quantifiers, \\p, inner anchors; see docs/limits.md), 54000 for a pattern too big, and as steadytext_generate_async.',
      sync: 'Text matching pattern in full. Raises as steadytext_generate_regex_async for bad arguments.',
    },
    modelRole: 'generation',
    args: [prompt, { name: 'pattern', sqlType: 'text' }, maxTokens, useCache, seed],
    result: 'text',
    pipelineInput: 'prompt',
  },
  generate_choice: {
    doc: {
      async: 'Returns the new request\'s id (result: exactly one of choices). Raises 22004 for NULL choices or a NULL choice, 22023 for none / an empty or duplicate choice, 54000 for more than max_choices, and as steadytext_generate_async.',
      sync: 'Exactly one of choices. Raises as steadytext_generate_choice_async for bad arguments.',
    },
    modelRole: 'generation',
    args: [prompt, { name: 'choices', sqlType: 'text[]' }, maxTokens, useCache, seed],
    result: 'text',
    pipelineInput: 'prompt',
  },
  embed: {
    doc: {
      async: 'Returns the new request\'s id (result: pgvector text \'[...]\'). Raises 22004/22023/54000 for bad arguments or a full queue.',
      sync: 'The L2-normalised embedding as real[]. With pgvector installed, steadytext_embed(...)::vector converts it (pgvector\'s real[] -> vector cast). Raises as steadytext_embed_async for bad arguments.',
      batch: 'Returns one embed request id per text, in order (\'{}\' for an empty array); shared batch_id. Raises as steadytext_generate_batch_async (argument texts).',
    },
    modelRole: 'embedding',
    args: [{ name: 'text_input', sqlType: 'text' }, useCache],
    result: 'vector',
    batch: { item: 'text_input', argument: 'texts' },
    pipelineInput: 'text_input',
  },
  rerank: {
    doc: {
      async: 'Returns the new request\'s id (result: JSON [{"document","score","index"}], best first). Raises 22004 for NULL documents or a NULL document, 22023 for no documents, 54000 for more than max_rerank_documents or one over max_prompt_bytes, and 22004/22023/54000 for query/task/seed/priority.',
      sync: 'One row per document, best first: (document, score). Raises as steadytext_rerank_async for bad arguments.',
    },
    modelRole: 'reranking',
    args: [
      { name: 'query', sqlType: 'text' },
      { name: 'documents', sqlType: 'text[]' },
      { name: 'task', sqlType: 'text', default: DEFAULT_RERANK_TASK },
      useCache,
      seed,
    ],
    result: 'ranked',
  },
} as const satisfies Record<string, JobType>;

type Catalog = typeof JOB_TYPES;

/** Values of steadytext_queue.function_name. */
export type FunctionName = keyof Catalog;

export const FUNCTION_NAMES = Object.keys(JOB_TYPES) as readonly FunctionName[];

/** True when `name` is a job type (not merely any property of the catalog object). */
export function isFunctionName(name: unknown): name is FunctionName {
  return typeof name === 'string' && Object.hasOwn(JOB_TYPES, name);
}

/** The value a job of type F produces (what its result format holds). */
export type ResultOf<F extends FunctionName> = ReturnType<(typeof RESULT_FORMATS)[Catalog[F]['result']]['read']>;

/** The model role that answers each job type. */
export function modelRoleOf(fn: FunctionName): ModelRole {
  return JOB_TYPES[fn].modelRole;
}

/** The job types a model role answers, in catalog order. */
export function functionsOfRole(role: ModelRole): FunctionName[] {
  return FUNCTION_NAMES.filter((fn) => JOB_TYPES[fn].modelRole === role);
}

/** steadytext_queue.result of a job of type `fn` whose value is `value`. */
export function writeResult<F extends FunctionName>(fn: F, value: ResultOf<F>): string {
  return (RESULT_FORMATS[JOB_TYPES[fn].result].write as (v: ResultOf<F>) => string)(value);
}

/** The value a completed job of type `fn` holds in steadytext_queue.result. */
export function readResult<F extends FunctionName>(fn: F, text: string): ResultOf<F> {
  return RESULT_FORMATS[JOB_TYPES[fn].result].read(text) as ResultOf<F>;
}

type ArgumentOf<F extends FunctionName> = Catalog[F]['args'][number];

/**
 * steadytext_queue.parameters: every SQL argument, defaults filled in, keyed
 * by the SQL argument name (the union over the job types; each argument
 * optional, since a row may come from any of them).
 */
export type JobParameters = {
  [A in ArgumentOf<FunctionName> as A['name']]?: SqlValues[A['sqlType']];
};
