// The SQL surface's limits (docs/limits.md): each one's name (its GUC is
// steadytext.<name>), default and description, in steadytext_limits() order:
// the one place they are written.
//
//   SQL   _steadytext_limit_defaults() (sql/src/20-validation.sql) is written
//         from this table by `npm run build:sql`, at its `-- @limits defaults`
//         line (src/db/schema/limitsSql.ts); _steadytext_limit() resolves a limit's
//         value from the default and the GUC, steadytext_limits() lists them.
//   Docs  docs/limits.md's table gives every limit with this default
//         (test/docs/limits-table.test.ts).
//
// What zero means (unlimited for the queue quotas) and how a session's SET
// may only tighten what an operator set are the SQL's (_steadytext_limit).
//
// Imports nothing.

export interface Limit {
  /** The limit's name; steadytext.<name> is its GUC. */
  name: string;
  /** Its value where no GUC sets one. */
  default: number;
  /** steadytext_limits().description. */
  description: string;
}

export const LIMITS = [
  { name: 'max_tokens', default: 4096, description: 'largest max_tokens a generate* function accepts (smallest is 1)' },
  { name: 'max_prompt_bytes', default: 262144, description: 'largest prompt, text_input, query, task and each rerank document / batch item, in bytes' },
  { name: 'max_rerank_documents', default: 1000, description: 'most documents one steadytext_rerank_async call accepts' },
  { name: 'max_batch_items', default: 10000, description: 'most items one steadytext_*_batch_async call accepts' },
  { name: 'max_choices', default: 256, description: 'most choices steadytext_generate_choice_async accepts (at least 2)' },
  { name: 'max_pattern_bytes', default: 4096, description: 'largest regex pattern, in bytes' },
  { name: 'max_schema_bytes', default: 65536, description: 'largest JSON schema (its jsonb text), in bytes' },
  { name: 'max_schema_depth', default: 64, description: 'deepest nesting of objects/arrays in a JSON schema' },
  { name: 'max_queue_size', default: 0, description: 'most pending + processing requests before enqueue raises 54000; 0 = unlimited' },
  { name: 'cache_max_entries', default: 10000, description: 'steadytext_cache rows kept by steadytext_cache_evict()' },
  { name: 'sync_timeout_seconds', default: 30, description: 'seconds steadytext_generate/_embed/_rerank/... wait for the worker before raising STX03' },
  { name: 'max_queue_per_role', default: 0, description: 'most pending + processing requests of one owner role before enqueue raises 54000; 0 = unlimited' },
  { name: 'max_priority', default: 2147483647, description: 'highest priority an enqueue accepts (22023 above it)' },
] as const satisfies readonly Limit[];

export type LimitName = (typeof LIMITS)[number]['name'];
