// The bad-input matrix: every SQL function with NULL, empty, oversized,
// wrong-typed (through the driver) and malicious arguments. Each is refused
// with its SQLSTATE and a message naming the argument (or PostgreSQL's own
// error for what the driver sends: 22P02, 22003, 22021), and leaves every
// steadytext table exactly as it was. A worker runs throughout; at the end it
// is alive and completes a normal job. Malicious strings that are valid text
// are stored and answered verbatim.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestWorker, waitFor } from '../worker/fixtures/queue.ts';
import type { Worker } from '../../src/worker/index.ts';
import { enableHandoff } from './helpers.ts';

let db: TestDatabase;
let worker: Worker;

before(async () => {
  db = await createTestDatabase();
  await enableHandoff(db.pool, db.url);
  worker = await startTestWorker(db.url);
  // something in every table, so that a change anywhere shows
  const id = (await db.pool.query(`SELECT steadytext_generate_async('seed row') AS id`)).rows[0].id;
  await db.pool.query(`SELECT steadytext_get_async_result($1, 10)`, [id]);
  await waitFor('cache row', async () => (await db.pool.query(`SELECT 1 FROM steadytext_cache`)).rows.length > 0);
  await db.pool.query(`INSERT INTO steadytext_dead_letter_queue (request_id, function_name, parameters) VALUES (gen_random_uuid(), 'generate', '{}')`);
});
after(async () => {
  await worker?.stop();
  await db.drop();
});

/** Row counts and checksums of every steadytext table (workers: without the heartbeat columns). */
async function snapshot(): Promise<Record<string, string>> {
  const r = await db.pool.query(`
    SELECT 'steadytext_queue' AS t, count(*) || ':' || coalesce(md5(string_agg(q::text, '|' ORDER BY q.request_id)), '') AS v FROM steadytext_queue q
    UNION ALL SELECT 'steadytext_cache', count(*) || ':' || coalesce(md5(string_agg(c::text, '|' ORDER BY c.cache_key)), '') FROM steadytext_cache c
    UNION ALL SELECT 'steadytext_config', count(*) || ':' || coalesce(md5(string_agg(k::text, '|' ORDER BY k.key)), '') FROM steadytext_config k
    UNION ALL SELECT 'steadytext_dead_letter_queue', count(*) || ':' || coalesce(md5(string_agg(d::text, '|' ORDER BY d.request_id)), '') FROM steadytext_dead_letter_queue d
    UNION ALL SELECT 'steadytext_migrations', count(*)::text FROM steadytext_migrations
    UNION ALL SELECT 'steadytext_workers', count(*) || ':' || coalesce(string_agg(w.worker_id || w.status, '|' ORDER BY w.worker_id), '') FROM steadytext_workers w`);
  return Object.fromEntries(r.rows.map((x) => [x.t, x.v]));
}

type Case = [sql: string, params: unknown[], code: string | string[], ...parts: string[]];

async function refuses(cases: Case[]): Promise<void> {
  for (const [sql, params, code, ...parts] of cases) {
    const before = await snapshot();
    let err: (Error & { code?: string }) | undefined;
    const t0 = Date.now();
    try {
      await db.pool.query(sql, params);
    } catch (e) {
      err = e as Error & { code?: string };
    }
    const what = `${sql} ${JSON.stringify(params.map((p) => (typeof p === 'string' && p.length > 40 ? `${p.slice(0, 20)}...(${p.length})` : Array.isArray(p) ? `[${p.length} items]` : p)))}`;
    assert.ok(err, `${what} should fail`);
    const codes = Array.isArray(code) ? code : [code];
    assert.ok(codes.includes(err.code!), `${what}: SQLSTATE ${err.code} (${err.message}), expected ${codes}`);
    for (const p of parts) assert.ok(err.message.includes(p), `${what}: "${err.message}" should mention ${p}`);
    assert.ok(Date.now() - t0 < 10_000, `${what} took ${Date.now() - t0} ms`);
    assert.deepEqual(await snapshot(), before, `${what} changed a table`);
  }
}

const ENQUEUE: Array<[fn: string, firstArg: string, rest: string]> = [
  ['steadytext_generate_async', 'prompt', ''],
  ['steadytext_embed_async', 'text_input', ''],
  ['steadytext_generate_json_async', 'prompt', `, '{"type":"string"}'`],
  ['steadytext_generate_regex_async', 'prompt', `, '[a-z]+'`],
  ['steadytext_generate_choice_async', 'prompt', `, ARRAY['a', 'b']`],
  ['steadytext_rerank_async', 'query', `, ARRAY['d']`],
  ['steadytext_generate', 'prompt', ''],
  ['steadytext_generate_json', 'prompt', `, '{"type":"string"}'`],
  ['steadytext_generate_regex', 'prompt', `, '[a-z]+'`],
  ['steadytext_generate_choice', 'prompt', `, ARRAY['a', 'b']`],
  ['steadytext_embed', 'text_input', ''],
  ['steadytext_rerank', 'query', `, ARRAY['d']`],
];
const call = (fn: string, args: string) => (fn === 'steadytext_rerank' ? `SELECT * FROM ${fn}(${args})` : `SELECT ${fn}(${args})`);
const MB = 'x'.repeat(1 << 20);

test('NULL arguments: 22004 naming the argument, for every function', async () => {
  const cases: Case[] = ENQUEUE.map(([fn, arg, rest]) => [call(fn, `NULL${rest}`), [], '22004', `${fn}: ${arg}`]);
  cases.push(
    [`SELECT steadytext_generate_batch_async(NULL)`, [], '22004', 'steadytext_generate_batch_async: prompts'],
    [`SELECT steadytext_embed_batch_async($1::text[])`, [null], '22004', 'steadytext_embed_batch_async: texts'],
    [`SELECT steadytext_generate_json_async('p', NULL)`, [], '22004', 'schema'],
    [`SELECT steadytext_generate_regex('p', NULL)`, [], '22004', 'steadytext_generate_regex: pattern'],
    [`SELECT steadytext_generate_choice_async('p', ARRAY['a', NULL])`, [], '22004', 'choices[2]'],
    [`SELECT * FROM steadytext_rerank('q', ARRAY['a', NULL])`, [], '22004', 'steadytext_rerank: documents[2]'],
    [`SELECT steadytext_generate_async('p', max_tokens := $1)`, [null], '22004', 'max_tokens'],
    [`SELECT steadytext_generate_async('p', use_cache := $1)`, [null], '22004', 'use_cache'],
    [`SELECT steadytext_generate_async('p', seed := $1)`, [null], '22004', 'seed'],
    [`SELECT steadytext_embed_async('p', priority := $1)`, [null], '22004', 'priority'],
    [`SELECT steadytext_check_async($1)`, [null], '22004', 'steadytext_check_async: request_id'],
    [`SELECT * FROM steadytext_check_async_batch($1::uuid[])`, [null], '22004', 'request_ids'],
    [`SELECT steadytext_get_async_result($1)`, [null], '22004', 'steadytext_get_async_result: request_id'],
    [`SELECT steadytext_get_async_result($1, $2)`, [randomUUID(), null], '22004', 'timeout_seconds'],
    [`SELECT steadytext_cancel_async($1)`, [null], '22004', 'steadytext_cancel_async: request_id'],
    [`SELECT steadytext_retry_failed($1)`, [null], '22004', 'steadytext_retry_failed: request_id'],
    [`SELECT steadytext_embedding($1)`, [null], '22004', 'steadytext_embedding: request_id'],
  );
  await refuses(cases);
  // STRICT and argument-free functions: NULL in, NULL out; nothing to pass
  assert.equal((await db.pool.query(`SELECT steadytext_cache_key(NULL, 'm', '{}') AS k`)).rows[0].k, null);
});

test('empty arguments: 22023 naming the argument', async () => {
  const cases: Case[] = ENQUEUE.map(([fn, arg, rest]) => [call(fn, `''${rest}`), [], '22023', `${fn}: ${arg}`]);
  cases.push(
    [`SELECT steadytext_generate_regex_async('p', '')`, [], '22023', 'pattern'],
    [`SELECT steadytext_generate_choice('p', '{}')`, [], '22023', 'choices must not be empty'],
    [`SELECT steadytext_rerank_async('q', '{}')`, [], '22023', 'documents must not be empty'],
    [`SELECT steadytext_rerank_async('q', ARRAY['d'], task := '')`, [], '22023', 'task'],
    [`SELECT steadytext_generate_batch_async(ARRAY['a', ''])`, [], '22023', 'prompts[2]'],
    [`SELECT steadytext_generate_json_async('p', '[]')`, [], '22023', 'schema must be a JSON object'],
    [`SELECT steadytext_get_async_result($1, -1)`, [randomUUID()], '22023', 'timeout_seconds'],
  );
  await refuses(cases);
  // an empty batch is not an error: '{}' and nothing written
  const before = await snapshot();
  assert.deepEqual((await db.pool.query(`SELECT steadytext_generate_batch_async('{}') AS ids`)).rows[0].ids, []);
  assert.deepEqual((await db.pool.query(`SELECT * FROM steadytext_check_async_batch('{}'::uuid[])`)).rows, []);
  assert.deepEqual(await snapshot(), before);
});

test('oversized: 1 MB text, 10k documents, 100k-item batches are 54000; 100k ids are just read', async () => {
  const cases: Case[] = ENQUEUE.map(([fn, arg, rest]) => [call(fn, `$1${rest}`), [MB], '54000', arg, '1048576 bytes']);
  const many = (n: number) => Array.from({ length: n }, (_, i) => `item ${i}`);
  cases.push(
    [`SELECT steadytext_rerank_async('q', $1)`, [many(10_000)], '54000', 'documents', '10000'],
    [`SELECT * FROM steadytext_rerank('q', $1)`, [many(10_000)], '54000', 'steadytext_rerank: documents'],
    [`SELECT steadytext_rerank_async('q', ARRAY['ok', $1])`, [MB], '54000', 'documents[2]'],
    [`SELECT steadytext_generate_batch_async($1)`, [many(100_000)], '54000', 'prompts', '100000'],
    [`SELECT steadytext_embed_batch_async($1)`, [many(100_000)], '54000', 'texts', '100000'],
    [`SELECT steadytext_generate_choice_async('p', $1)`, [many(100_000)], '54000', 'choices', '100000'],
    [`SELECT steadytext_generate_regex_async('p', $1)`, [MB], '54000', 'pattern', '1048576 bytes'],
    [`SELECT steadytext_generate_json_async('p', jsonb_build_object('description', $1::text))`, [MB], '54000', 'schema', '65536'],
    [`SELECT steadytext_generate_async('p', max_tokens := 1000000)`, [], '22023', 'max_tokens must be between 1 and 4096'],
  );
  await refuses(cases);
  const ids = Array.from({ length: 100_000 }, () => randomUUID());
  const before = await snapshot();
  const r = await db.pool.query(`SELECT count(*) FILTER (WHERE status = 'not_found')::int AS n FROM steadytext_check_async_batch($1::uuid[])`, [ids]);
  assert.equal(r.rows[0].n, 100_000);
  assert.deepEqual(await snapshot(), before);
});

test('wrong types through the driver: PostgreSQL\'s own 22P02 / 22003, nothing changed', async () => {
  const id = randomUUID();
  await refuses([
    [`SELECT steadytext_generate_async('p', max_tokens := $1)`, ['abc'], '22P02', 'integer'],
    [`SELECT steadytext_generate('p', max_tokens := $1)`, ['abc'], '22P02', 'integer'],
    [`SELECT steadytext_generate_async('p', priority := $1)`, [NaN], '22P02', 'NaN'],
    [`SELECT steadytext_generate_async('p', priority := $1)`, ['NaN'], '22P02', 'NaN'],
    [`SELECT steadytext_generate_async('p', priority := $1)`, [1e20], '22003', 'out of range'],
    [`SELECT steadytext_embed_batch_async(ARRAY['a'], priority := $1)`, [2 ** 31], '22003', 'out of range'],
    [`SELECT steadytext_generate_async('p', seed := $1)`, [1.5], '22P02'],
    [`SELECT steadytext_generate_async('p', use_cache := $1)`, ['maybe'], '22P02', 'boolean'],
    [`SELECT steadytext_generate_json_async('p', $1)`, ['{not json'], '22P02', 'json'],
    [`SELECT steadytext_generate_json('p', $1)`, ['{not json'], '22P02', 'json'],
    [`SELECT steadytext_check_async($1)`, ['not-a-uuid'], '22P02', 'uuid'],
    [`SELECT * FROM steadytext_check_async_batch($1::uuid[])`, [[id, 'nope']], '22P02', 'uuid'],
    [`SELECT * FROM steadytext_check_async_batch($1::text[])`, [[id, 'nope']], '22P02', 'uuid'],
    [`SELECT steadytext_get_async_result($1, $2)`, [id, 'soon'], '22P02', 'integer'],
    [`SELECT steadytext_cancel_async($1)`, ['1; DROP TABLE steadytext_queue'], '22P02', 'uuid'],
    [`SELECT steadytext_retry_failed($1)`, [42], '22P02', 'uuid'],
    [`SELECT steadytext_embedding($1)`, ['x'], '22P02', 'uuid'],
    [`SELECT steadytext_generate_choice_async('p', $1)`, ['not an array'], '22P02', 'array'],
  ]);
});

test('invalid UTF-8 and NUL bytes are refused by PostgreSQL itself (22021)', async () => {
  const bad = Buffer.from([0x61, 0xff, 0x62]);
  await refuses([
    [`SELECT steadytext_generate_async($1)`, [bad], '22021', 'UTF8'],
    [`SELECT steadytext_embed($1)`, [bad], '22021', 'UTF8'],
    [`SELECT steadytext_generate_regex_async('p', $1)`, [bad], '22021'],
    [`SELECT steadytext_generate_async($1)`, ['a\u0000b'], '22021', '0x00'],
    [`SELECT steadytext_rerank_async('q', $1)`, [['ok', 'nul\u0000here']], '22021'],
    [`SELECT steadytext_generate_json_async('p', $1)`, ['{"description": "\\u0000"}'], ['22P05', '22021'], ''],
  ]);
});

test('pathological patterns and schemas: clear errors, fast, nothing written', async () => {
  await refuses([
    [`SELECT steadytext_generate_regex_async('p', $1)`, ['a{1000000}'], '54000', 'pattern', 'repetition count above 1000'],
    [`SELECT steadytext_generate_regex_async('p', $1)`, ['((a{255}){255}){255}'], '54000', 'pattern', 'over the limit of 10000'],
    [`SELECT steadytext_generate_regex('p', $1)`, ['(a)\\1'], '0A000', 'steadytext_generate_regex: pattern', 'backreference'],
    [`SELECT steadytext_generate_regex_async('p', $1)`, [`'); DROP TABLE steadytext_queue; --`], '22023', 'pattern', "unmatched ')'"],
    [`SELECT steadytext_generate_json_async('p', $1::jsonb)`, ['{"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}'], '0A000', 'schema', '$ref'],
    [`SELECT steadytext_generate_json_async('p', $1::jsonb)`, ['{"properties": {"self": {"$ref": "#"}}}'], '0A000', '$ref'],
    [`SELECT steadytext_generate_json_async('p', $1::jsonb)`, ['['.repeat(10_000) + ']'.repeat(10_000)], '22023', 'schema must be a JSON object'],
    [`SELECT steadytext_generate_json_async('p', $1::jsonb)`, ['{"items":'.repeat(10_000) + '{}' + '}'.repeat(10_000)], '54000', 'schema'],
    [`SELECT steadytext_generate_json_async('p', $1::jsonb)`, ['{"enum":[' + '['.repeat(5_000) + ']'.repeat(5_000) + ']}'], '54000', 'deeper than 64'],
  ]);
  // a nested quantifier is no trap here: grammars do not backtrack
  const id = (await db.pool.query(`SELECT steadytext_generate_regex_async('p', '(a+)+$', use_cache := false) AS id`)).rows[0].id;
  assert.equal((await db.pool.query(`SELECT steadytext_get_async_result($1, 10) AS r`, [id])).rows[0].r, 'regex:(a+)+$:p');
});

test('SQL in strings is data: stored and answered verbatim, through the hand-off too', async () => {
  const evil = `'); DROP TABLE steadytext_queue; --`;
  const evil2 = `$$; DELETE FROM steadytext_cache; $$ \\' "x"`;
  const id = (await db.pool.query(`SELECT steadytext_generate_async($1, use_cache := false) AS id`, [evil])).rows[0].id;
  assert.equal((await db.pool.query(`SELECT parameters->>'prompt' AS p FROM steadytext_queue WHERE request_id = $1`, [id])).rows[0].p, evil);
  assert.equal((await db.pool.query(`SELECT steadytext_get_async_result($1, 10) AS r`, [id])).rows[0].r, `echo:${evil}`);
  assert.equal((await db.pool.query(`SELECT steadytext_generate($1, use_cache := false) AS r`, [evil2])).rows[0].r, `echo:${evil2}`);
  const ranked = await db.pool.query(`SELECT * FROM steadytext_rerank($1, ARRAY[$1, $2])`, [evil, evil2]);
  assert.deepEqual(ranked.rows.map((r) => r.document), [evil, evil2]);
  assert.equal((await db.pool.query(`SELECT steadytext_generate_choice('p', ARRAY[$1, $2]) AS r`, [evil, evil2])).rows[0].r, evil2);
  assert.ok((await db.pool.query(`SELECT to_regclass('steadytext_queue') AS t`)).rows[0].t);
  assert.ok((await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_cache`)).rows[0].n > 0);
});

test('the worker survived the matrix: alive, and completes a normal job', async () => {
  const w = (await db.pool.query(`SELECT status FROM steadytext_worker_status() WHERE worker_id = $1`, [worker.workerId])).rows[0];
  assert.equal(w.status, 'running');
  const id = (await db.pool.query(`SELECT steadytext_generate_async('after the matrix', use_cache := false) AS id`)).rows[0].id;
  assert.equal((await db.pool.query(`SELECT steadytext_get_async_result($1, 10) AS r`, [id])).rows[0].r, 'echo:after the matrix');
  // The result is visible once its statement commits; the worker lets go of the job just after.
  await waitFor('the worker to hold no job', async () => worker.stats.running === 0);
});
