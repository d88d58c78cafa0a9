// The SQL that restates the job types, written from src/jobTypes.ts by
// `npm run build:sql` (src/db/schema/sqlBuild.ts). A source line
//
//     -- @job-types <fragment>
//
// stays in the built script and is followed by the fragment's lines, at its
// indentation: the arms of a `CASE function_name` (an unknown function_name
// falls through to NULL).
import { FUNCTION_NAMES, JOB_TYPES, type FunctionName, type JobType } from '../../jobTypes.ts';
import { expandFragments, literal, type Fragments } from './sqlFragments.ts';
import { asyncFunctionsSql, syncFunctionsSql } from './publicFunctionsSql.ts';

const array = (items: readonly string[]) => `ARRAY[${items.map(literal).join(', ')}]`;

/** `WHEN 'fn' THEN <value>` for each job type `value` gives one for, the names aligned. */
function arms(value: (t: JobType) => string | undefined): string[] {
  const rows = FUNCTION_NAMES.map((fn): [FunctionName, string | undefined] => [fn, value(JOB_TYPES[fn])])
    .filter((r): r is [FunctionName, string] => r[1] !== undefined);
  const width = Math.max(...rows.map(([fn]) => literal(fn).length));
  return rows.map(([fn, v]) => `WHEN ${literal(fn).padEnd(width)} THEN ${v}`);
}

/** Each fragment: the CASE arms (or, for the public functions, the definitions) it writes, from the catalog. */
export const FRAGMENTS: Fragments = {
  /** 50-async-functions.sql: steadytext_<name>_async and the batch forms. */
  'async-functions': asyncFunctionsSql,
  /** 80-sync.sql: the synchronous twins. */
  'sync-functions': syncFunctionsSql,
  /** _steadytext_arguments: every argument (parameters key), in the public function's order. */
  arguments: () => arms((t) => array(t.args.map((a) => a.name))),
  /** _steadytext_model_role. */
  'model-roles': () => arms((t) => literal(t.modelRole)),
  /** _steadytext_cache_parameters: the arguments that change the output. */
  'cache-arguments': () => arms((t) => array(t.args.filter((a) => a.inCacheKey !== false).map((a) => a.name))),
  /** _steadytext_enqueue_batch: the argument each item of a batch fills (types with a batch form only). */
  'batch-items': () => arms((t) => (t.batch ? literal(t.batch.item) : undefined)),
  /** _steadytext_enqueue_batch: the batch function's name for its items, as its errors say it. */
  'batch-arguments': () => arms((t) => (t.batch ? literal(t.batch.argument) : undefined)),
  /** _steadytext_pipeline_input: the argument a pipeline's input fills (types a pipeline may run only). */
  'pipeline-inputs': () => arms((t) => (t.pipelineInput !== undefined ? literal(t.pipelineInput) : undefined)),
  /** _steadytext_argument_defaults: the arguments that have a default, with it, as a JSON object. */
  'argument-defaults': () =>
    arms((t) => {
      const withDefault = t.args.filter((a): a is typeof a & { default: string | number | boolean } => 'default' in a);
      return `${literal(JSON.stringify(Object.fromEntries(withDefault.map((a) => [a.name, a.default]))))}::jsonb`;
    }),
};

/** `text` with every `-- @job-types` line followed by its fragment; `file` names the source in errors. */
export function expandJobTypes(text: string, file: string): string {
  return expandFragments('@job-types', FRAGMENTS, text, file);
}
