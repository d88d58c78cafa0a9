// The job-type catalog (src/jobTypes.ts) and the installed schema agree: the
// public functions' arguments, defaults and result types, the
// steadytext_queue.function_name CHECK, the helpers the build writes from the
// catalog (-- @job-types lines), the defaults an enqueue fills into
// parameters, and which results steadytext_embedding reads. Fails when either
// side changes alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import type { Queryable } from '../../src/db/queryable.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { SQL_DIR } from '../../src/db/schema/migrate.ts';
import { expandJobTypes, FRAGMENTS } from '../../src/db/schema/jobTypesSql.ts';
import {
  DEFAULT_RERANK_TASK,
  FUNCTION_NAMES,
  JOB_TYPES,
  RESULT_FORMATS,
  readResult,
  writeResult,
  type FunctionName,
  type JobArgument,
  type JobType,
} from '../../src/jobTypes.ts';


const jobType = (fn: FunctionName): JobType => JOB_TYPES[fn];

/** An argument as pg_get_function_arguments() prints it. */
function printed(a: Pick<JobArgument, 'name' | 'sqlType' | 'default'>): string {
  const d = a.default;
  const dflt =
    d === undefined ? '' : ` DEFAULT ${typeof d === 'string' ? `'${d.replaceAll("'", "''")}'::${a.sqlType}` : String(d)}`;
  return `${a.name} ${a.sqlType}${dflt}`;
}

const PRIORITY = printed({ name: 'priority', sqlType: 'integer', default: 0 });

/** A valid value for each required argument (a new one needs a sample here). */
const SAMPLES: Record<string, unknown> = {
  prompt: 'a prompt',
  schema: { type: 'string' },
  pattern: '[a-z]+',
  choices: ['yes', 'no'],
  text_input: 'a text',
  query: 'a query',
  documents: ['doc one', 'doc two'],
};

async function signatures(db: Queryable, name: string): Promise<{ args: string; result: string }[]> {
  const r = await db.query<{ args: string; result: string }>(
    `SELECT pg_get_function_arguments(p.oid) AS args, pg_get_function_result(p.oid) AS result
     FROM pg_proc AS p WHERE p.proname = $1 AND p.pronamespace = 'public'::regnamespace`,
    [name],
  );
  return r.rows;
}

test('the catalog: one default rerank task, result formats read what they write', () => {
  const task = JOB_TYPES.rerank.args.find((a) => a.name === 'task');
  assert.equal(task && 'default' in task ? task.default : undefined, DEFAULT_RERANK_TASK);
  assert.deepEqual(readResult('embed', writeResult('embed', [0.25, -1, 3e-8])), [0.25, -1, 3e-8]);
  assert.deepEqual(readResult('generate_json', writeResult('generate_json', { a: [1, 'x', null] })), { a: [1, 'x', null] });
  const ranked = [{ document: 'd', score: 0.5, index: 0 }];
  assert.deepEqual(readResult('rerank', writeResult('rerank', ranked)), ranked);
  assert.equal(readResult('generate', writeResult('generate', '[1]')), '[1]');
  for (const fn of FUNCTION_NAMES) {
    const names = jobType(fn).args.map((a) => a.name);
    assert.equal(new Set(names).size, names.length, `${fn}: argument names are distinct`);
    assert.ok(!names.includes('priority'), `${fn}: priority is the async function's own, not a parameter`);
  }
});

test('every -- @job-types line in sql/src names a fragment, and every fragment is used', () => {
  const used = new Set<string>();
  for (const f of readdirSync(path.join(SQL_DIR, 'src')).filter((f) => f.endsWith('.sql'))) {
    const text = readFileSync(path.join(SQL_DIR, 'src', f), 'utf8');
    for (const m of text.matchAll(/-- @job-types[ \t]*(\S*)/g)) used.add(m[1]);
    expandJobTypes(text, f); // throws on an unknown fragment
  }
  assert.deepEqual([...used].sort(), Object.keys(FRAGMENTS).sort());
  assert.throws(() => expandJobTypes('    -- @job-types nonsense\n', 'x.sql'), /x\.sql: unknown fragment 'nonsense'/);
  assert.equal(
    expandJobTypes('  CASE f\n    -- @job-types model-roles\n  END', 'x.sql').split('\n')[2],
    "    WHEN 'generate'        THEN 'generation'",
  );
});

test('the installed schema has exactly the catalog: public functions, CHECK, generated helpers, defaults in parameters, steadytext_embedding', async () => {
  const db = await createTestDatabase();
  try {
    // steadytext_queue.function_name's CHECK (an @install-only table: an
    // upgrade script changes it by hand) lists exactly the job types.
    const check = await db.pool.query<{ def: string }>(
      `SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint AS c
       WHERE c.conrelid = 'steadytext_queue'::regclass AND c.contype = 'c'
         AND pg_get_constraintdef(c.oid) LIKE '%function_name%'`,
    );
    assert.equal(check.rows.length, 1, 'one CHECK on function_name');
    const listed = [...check.rows[0].def.matchAll(/'([^']*)'::text/g)].map((m) => m[1]);
    assert.deepEqual(listed.sort(), [...FUNCTION_NAMES].sort(), `CHECK: ${check.rows[0].def}`);

    // Every public function that enqueues (returns uuid / uuid[]) is a catalog type's.
    const enqueuers = await db.pool.query<{ proname: string }>(
      `SELECT p.proname FROM pg_proc AS p
       WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'steadytext\\_%'
         AND p.prorettype IN ('uuid'::regtype, 'uuid[]'::regtype)`,
    );
    const expectedEnqueuers = FUNCTION_NAMES.flatMap((fn) => [
      `steadytext_${fn}_async`,
      ...(jobType(fn).batch ? [`steadytext_${fn}_batch_async`] : []),
    ]);
    assert.deepEqual(enqueuers.rows.map((r) => r.proname).sort(), expectedEnqueuers.sort());

    for (const fn of FUNCTION_NAMES) {
      const t = jobType(fn);
      const args = t.args.map(printed);
      assert.deepEqual(await signatures(db.pool, `steadytext_${fn}_async`), [{ args: [...args, PRIORITY].join(', '), result: 'uuid' }],
        `steadytext_${fn}_async`);
      assert.deepEqual(await signatures(db.pool, `steadytext_${fn}`),
        [{ args: args.join(', '), result: RESULT_FORMATS[t.result].syncSqlType }], `steadytext_${fn}`);
      if (t.batch) {
        const rest = t.args.filter((a) => a.name !== t.batch!.item).map(printed);
        assert.deepEqual(await signatures(db.pool, `steadytext_${fn}_batch_async`),
          [{ args: [`${t.batch.argument} text[]`, ...rest, PRIORITY].join(', '), result: 'uuid[]' }], `steadytext_${fn}_batch_async`);
      }

      const helpers = await db.pool.query(
        `SELECT _steadytext_arguments($1) AS args, _steadytext_model_role($1) AS role,
                ARRAY(SELECT jsonb_object_keys(_steadytext_cache_parameters($1, $2::jsonb)) ORDER BY 1) AS cached`,
        [fn, JSON.stringify(Object.fromEntries(t.args.map((a) => [a.name, 'x'])))],
      );
      assert.deepEqual(helpers.rows[0], {
        args: t.args.map((a) => a.name),
        role: t.modelRole,
        cached: t.args.filter((a) => a.inCacheKey !== false).map((a) => a.name).sort(),
      }, `helpers of ${fn}`);

      // An enqueue with only the required arguments fills in the catalog's defaults.
      const required = t.args.filter((a) => a.default === undefined);
      for (const a of required) assert.ok(a.name in SAMPLES, `a sample value for ${a.name} (add it to SAMPLES)`);
      const call = required.map((a, i) => `${a.name} => $${i + 1}::${a.sqlType}`).join(', ');
      const values = required.map((a) => (a.sqlType === 'jsonb' ? JSON.stringify(SAMPLES[a.name]) : SAMPLES[a.name]));
      const id = (await db.pool.query(`SELECT steadytext_${fn}_async(${call}) AS id`, values)).rows[0].id;
      const stored = (await db.pool.query(`SELECT parameters FROM steadytext_queue WHERE request_id = $1`, [id])).rows[0];
      assert.deepEqual(stored.parameters, Object.fromEntries(t.args.map((a) => [a.name, a.default ?? SAMPLES[a.name]])),
        `parameters of steadytext_${fn}_async`);
      if (t.batch) {
        const items = (await db.pool.query(`SELECT steadytext_${fn}_batch_async(ARRAY['one']) AS ids`)).rows[0].ids;
        const row = (await db.pool.query(`SELECT parameters FROM steadytext_queue WHERE request_id = $1`, [items[0]])).rows[0];
        assert.deepEqual(row.parameters, Object.fromEntries(t.args.map((a) => [a.name, a.name === t.batch!.item ? 'one' : a.default])),
          `parameters of steadytext_${fn}_batch_async`);
      }

      // steadytext_embedding reads exactly the results in the vector format.
      const value = { text: 'x', json: { a: 1 }, vector: [0.6, 0.8], ranked: [{ document: 'd', score: 1, index: 0 }] }[t.result];
      const done = (await db.pool.query(
        `INSERT INTO steadytext_queue (function_name, parameters, status, result, completed_at)
         VALUES ($1, '{}', 'completed', $2, now()) RETURNING request_id`,
        [fn, (RESULT_FORMATS[t.result].write as (v: unknown) => string)(value)],
      )).rows[0].request_id;
      const read = await db.pool.query(`SELECT steadytext_embedding($1) AS v`, [done]).then(
        (r) => r.rows[0].v as number[],
        (e: Error & { code?: string }) => e,
      );
      if (t.result === 'vector') assert.deepEqual(read, value, `steadytext_embedding reads a ${fn} result`);
      else assert.ok(read instanceof Error && read.code === '22023', `steadytext_embedding refuses a ${fn} result (${String(read)})`);
    }
    const unknown = await db.pool.query(`SELECT _steadytext_arguments('nope') AS a, _steadytext_model_role('nope') AS r`);
    assert.deepEqual(unknown.rows[0], { a: null, r: null });
  } finally {
    await db.drop();
  }
});
