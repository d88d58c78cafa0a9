// The public SQL functions of every job type, written from src/jobTypes.ts by
// `npm run build:sql` at the `-- @job-types async-functions` line of
// sql/src/50-async-functions.sql and `-- @job-types sync-functions` of
// 80-sync.sql (fragments of jobTypesSql.ts):
//
//   steadytext_<name>_async(args..., priority)  -> uuid, through _steadytext_enqueue
//   steadytext_<name>_batch_async(items, ...)   -> uuid[], through _steadytext_enqueue_batch
//   steadytext_<name>(args...)                  -> the result, through _steadytext_sync
//
// Each takes the entry's arguments, in order, with their defaults; the helper
// it calls validates every one of them (sql/src/20-validation.sql).
import { FUNCTION_NAMES, JOB_TYPES, RESULT_FORMATS, type FunctionName, type JobArgument } from '../../jobTypes.ts';
import { literal } from './sqlFragments.ts';

const SQL_TYPES: Record<JobArgument['sqlType'], string> = {
  text: 'TEXT',
  integer: 'INTEGER',
  boolean: 'BOOLEAN',
  jsonb: 'JSONB',
  'text[]': 'TEXT[]',
};

/** `text` as `--` comment lines of at most 78 characters. */
function comment(text: string): string[] {
  const out: string[] = [];
  let line = '--';
  for (const word of text.split(' ')) {
    if (line.length + 1 + word.length > 78 && line !== '--') {
      out.push(line);
      line = '--';
    }
    line += ` ${word}`;
  }
  return [...out, line];
}

const sqlDefault = (v: string | number | boolean) => (typeof v === 'string' ? literal(v) : String(v));

/** `name TYPE [DEFAULT v]` lines, comma-separated. */
function parameters(args: readonly { name: string; type: string; default?: string | number | boolean }[]): string[] {
  return args.map(
    (a, i) => `    ${a.name} ${a.type}${a.default === undefined ? '' : ` DEFAULT ${sqlDefault(a.default)}`}${i < args.length - 1 ? ',' : ''}`,
  );
}

/** jsonb_build_object of `args`, each named through `fn` (no clash with a column or keyword). */
function parametersObject(fn: string, args: readonly JobArgument[]): string {
  return `jsonb_build_object(${args.map((a) => `${literal(a.name)}, ${fn}.${a.name}`).join(', ')})`;
}

function definition(name: string, doc: string, params: string[], returns: string, body: string): string[] {
  return [
    '',
    ...comment(doc),
    `CREATE OR REPLACE FUNCTION @extschema@.${name}(`,
    ...params,
    `) RETURNS ${returns}`,
    'LANGUAGE sql VOLATILE',
    'SET search_path = pg_catalog, pg_temp',
    'AS $$',
    ...body.split('\n').map((l) => `    ${l}`),
    '$$;',
  ];
}

const columnType = (a: JobArgument) => ({ name: a.name, type: SQL_TYPES[a.sqlType], default: a.default });
const priority = { name: 'priority', type: 'INTEGER', default: 0 };

function asyncFunctions(fn: FunctionName): string[] {
  const t = JOB_TYPES[fn];
  const name = `steadytext_${fn}_async`;
  const out = definition(
    name,
    t.doc.async,
    parameters([...t.args.map(columnType), priority]),
    'UUID',
    `SELECT @extschema@._steadytext_enqueue(${literal(name)}, ${literal(fn)},\n    ${parametersObject(name, t.args)},\n    ${name}.priority)`,
  );
  if ('batch' in t && t.batch && t.doc.batch) {
    const batch = t.batch;
    const batchName = `steadytext_${fn}_batch_async`;
    const rest = t.args.filter((a) => a.name !== batch.item);
    out.push(
      ...definition(
        batchName,
        t.doc.batch,
        parameters([{ name: batch.argument, type: `${columnType(t.args.find((a) => a.name === batch.item)!).type}[]` }, ...rest.map(columnType), priority]),
        'UUID[]',
        `SELECT @extschema@._steadytext_enqueue_batch(${literal(batchName)}, ${literal(fn)},\n    ${parametersObject(batchName, rest)},\n    ${batchName}.${batch.argument}, ${batchName}.priority)`,
      ),
    );
  }
  return out;
}

function syncFunction(fn: FunctionName): string[] {
  const t = JOB_TYPES[fn];
  const name = `steadytext_${fn}`;
  const format = RESULT_FORMATS[t.result];
  const call = `@extschema@._steadytext_sync(${literal(name)}, ${literal(fn)},\n    ${parametersObject(name, t.args)})`;
  return definition(name, t.doc.sync, parameters(t.args.map(columnType)), format.syncSqlType, format.syncSql(call));
}

/** The async and batch forms of every job type, in catalog order. */
export const asyncFunctionsSql = (): string[] => FUNCTION_NAMES.flatMap(asyncFunctions);

/** The synchronous form of every job type, in catalog order. */
export const syncFunctionsSql = (): string[] => FUNCTION_NAMES.flatMap(syncFunction);
