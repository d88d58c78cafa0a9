// Bad arguments raise the documented SQLSTATE, name the argument, and write nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { assertSqlError, queueCount } from './helpers.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db.drop();
});

const NULL_ = '22004';
const BAD = '22023';
const LIMIT = '54000';
const MALFORMED = '22023';
const UNSUPPORTED = '0A000';

async function rejects(sql: string, params: unknown[], code: string, ...parts: string[]) {
  const n = await queueCount(db.pool);
  await assertSqlError(db.pool, sql, params, code, ...parts);
  assert.equal(await queueCount(db.pool), n, `${sql} must not enqueue anything`);
}

test('prompt: NULL, empty, over max_prompt_bytes (1 MB)', async () => {
  await rejects(`SELECT steadytext_generate_async(NULL)`, [], NULL_, 'steadytext_generate_async: prompt must not be NULL or empty');
  await rejects(`SELECT steadytext_generate_async('')`, [], BAD, 'steadytext_generate_async: prompt');
  await rejects(`SELECT steadytext_generate_async(repeat('x', 1048576))`, [], LIMIT, 'prompt', '1048576 bytes', '262144');
  await rejects(`SELECT steadytext_embed_async(NULL)`, [], NULL_, 'steadytext_embed_async: text_input');
  await rejects(`SELECT steadytext_rerank_async('', ARRAY['a'])`, [], BAD, 'steadytext_rerank_async: query');
  // the limit is a GUC
  const c = await db.connect();
  await c.query(`SET steadytext.max_prompt_bytes = 10`);
  await assertSqlError(c, `SELECT steadytext_generate_async('elevenbytes')`, [], LIMIT, 'prompt');
  await c.query(`SELECT steadytext_generate_async('tenbytes!!')`);
});

test('max_tokens 0 and 4097; NULL seed/use_cache/priority; negative seed', async () => {
  await rejects(`SELECT steadytext_generate_async('p', max_tokens := 0)`, [], BAD, 'max_tokens', 'between 1 and 4096');
  await rejects(`SELECT steadytext_generate_async('p', max_tokens := 4097)`, [], BAD, 'max_tokens');
  await rejects(`SELECT steadytext_generate_json_async('p', '{}', max_tokens := NULL)`, [], NULL_, 'max_tokens');
  await rejects(`SELECT steadytext_generate_async('p', seed := NULL)`, [], NULL_, 'seed');
  await rejects(`SELECT steadytext_generate_async('p', seed := -1)`, [], BAD, 'seed');
  await rejects(`SELECT steadytext_generate_async('p', use_cache := NULL)`, [], NULL_, 'use_cache');
  await rejects(`SELECT steadytext_embed_async('p', priority := NULL)`, [], NULL_, 'priority');
});

test('choices: NULL, empty, one, NULL/empty/duplicate element, too many', async () => {
  const f = 'steadytext_generate_choice_async';
  await rejects(`SELECT ${f}('p', NULL)`, [], NULL_, `${f}: choices`);
  await rejects(`SELECT ${f}('p', '{}')`, [], BAD, 'choices must not be empty');
  await rejects(`SELECT ${f}('p', ARRAY['a', NULL])`, [], NULL_, 'choices[2]');
  await rejects(`SELECT ${f}('p', ARRAY['a', ''])`, [], BAD, 'choices[2]');
  await rejects(`SELECT ${f}('p', ARRAY['a', 'b', 'a'])`, [], BAD, 'choices', 'distinct');
  // SteadyText's contract: a choice needs at least 2 distinct options
  await rejects(`SELECT ${f}('p', ARRAY['only'])`, [], BAD, `${f}: choices must hold at least 2`);
  await rejects(`SELECT steadytext_generate_choice('p', ARRAY['only'])`, [], BAD, 'steadytext_generate_choice: choices');
  await rejects(`SELECT ${f}('p', ARRAY(SELECT g::text FROM generate_series(1, 257) g))`, [], LIMIT, 'choices', '257');
});

test('pattern: malformed regex is 22023 naming the position', async () => {
  for (const p of ['[a-', '(abc', 'a{2,1}', 'abc\\']) {
    await rejects(`SELECT steadytext_generate_regex_async('p', $1)`, [p], MALFORMED, 'steadytext_generate_regex_async: pattern', 'at character');
  }
  await rejects(`SELECT steadytext_generate_regex_async('p', NULL)`, [], NULL_, 'pattern');
  await rejects(`SELECT steadytext_generate_regex_async('p', repeat('a', 4097))`, [], LIMIT, 'pattern');
});

test('pattern: constructs a grammar cannot express are 0A000', async () => {
  const unsupported = [
    '(a)\\1', '(?<n>a)\\k<n>', 'a(?=b)', 'a(?!b)', '(?<=a)b', '(?<!a)b',
    '\\bword\\b', 'a\\B', '\\yx', '\\mx\\M', 'a*?', 'a+?', 'a??', 'a{2,3}?', '\\p{L}', '\\P{L}',
    'a^b', 'a$b', '(^a)', 'a|^b', '[[:alpha:]]', '(?i)abc', '\\Aabc',
  ];
  for (const p of unsupported) {
    await rejects(`SELECT steadytext_generate_regex_async('p', $1)`, [p], UNSUPPORTED, 'steadytext_generate_regex_async: pattern');
  }
});

test('pattern: the supported subset is accepted', async () => {
  const supported = [
    'abc', '^\\d{3}-\\d{4}$', '[A-Za-z_][\\w]*', '[^\\]x]+', '(?:yes|no)', '(a|b)+c?', 'a{2}b{1,}c{0,3}',
    '\\s\\S\\D\\W\\.\\(\\)\\$\\^', '.*', '[$^]', '\\n\\t', '[]a]',
  ];
  for (const p of supported) {
    await db.pool.query(`SELECT steadytext_generate_regex_async('p', $1)`, [p]);
  }
});

test('schema: malformed, $ref, too deep, too big', async () => {
  const f = 'steadytext_generate_json_async';
  const bad: Array<[unknown, string, string]> = [
    ['"string"', BAD, 'schema must be a JSON object'],
    ['[1]', BAD, 'schema must be a JSON object'],
    ['false', BAD, 'schema'],
    ['{"type": "text"}', BAD, 'schema.type'],
    ['{"type": ["string", 3]}', BAD, 'schema.type'],
    ['{"properties": []}', BAD, 'schema.properties must be an object'],
    ['{"properties": {"a": {"type": "strin"}}}', BAD, 'schema.properties.a.type'],
    ['{"properties": {"a": 5}}', BAD, 'schema.properties.a'],
    ['{"required": "a"}', BAD, 'required'],
    ['{"enum": "a"}', BAD, 'enum'],
    ['{"anyOf": {}}', BAD, 'anyOf'],
    ['{"$ref": "#/defs/a"}', UNSUPPORTED, 'schema.$ref is not supported'],
    ['{"properties": {"a": {"items": {"$ref": "#"}}}}', UNSUPPORTED, '$ref'],
  ];
  for (const [s, code, msg] of bad) {
    await rejects(`SELECT ${f}('p', $1::jsonb)`, [s], code, `${f}: schema`, msg);
  }
  await rejects(`SELECT ${f}('p', NULL)`, [], NULL_, 'schema');
  // 65 nested objects: one level too deep; 64 is fine
  const nest = (n: number) => '{"a":'.repeat(n - 1) + '{}' + '}'.repeat(n - 1);
  await rejects(`SELECT ${f}('p', $1::jsonb)`, [nest(65)], LIMIT, 'schema', 'deeper than 64');
  await db.pool.query(`SELECT ${f}('p', $1::jsonb)`, [nest(64)]);
  await rejects(`SELECT ${f}('p', jsonb_build_object('description', repeat('x', 70000)))`, [], LIMIT, 'schema', '65536');
  // a property named like a keyword is fine; enum values are data
  await db.pool.query(`SELECT ${f}('p', $1::jsonb)`, [
    '{"type":"object","properties":{"type":{"type":"string"},"properties":{"enum":[{"type":5}]}},"required":["type"]}',
  ]);
  await db.pool.query(`SELECT ${f}('p', 'true')`);
});

test('documents: NULL array, NULL element, empty array, too many', async () => {
  const f = 'steadytext_rerank_async';
  await rejects(`SELECT ${f}('q', NULL)`, [], NULL_, `${f}: documents`);
  await rejects(`SELECT ${f}('q', ARRAY['a', NULL])`, [], NULL_, 'documents[2]');
  await rejects(`SELECT ${f}('q', '{}')`, [], BAD, 'documents must not be empty');
  await rejects(`SELECT ${f}('q', ARRAY(SELECT 'd' FROM generate_series(1, 1001)))`, [], LIMIT, 'documents', '1001');
  await rejects(`SELECT ${f}('q', ARRAY['a'], task := NULL)`, [], NULL_, 'task');
});

test('batches validate every item first; over-limit batch is 54000', async () => {
  const f = 'steadytext_generate_batch_async';
  await rejects(`SELECT ${f}(NULL)`, [], NULL_, `${f}: prompts`);
  await rejects(`SELECT ${f}(ARRAY['a', 'b', NULL])`, [], NULL_, 'prompts[3]');
  await rejects(`SELECT ${f}(ARRAY['a', ''])`, [], BAD, 'prompts[2]');
  await rejects(`SELECT ${f}(ARRAY[['a'], ['b']])`, [], BAD, 'one-dimensional');
  await rejects(`SELECT ${f}(ARRAY['ok', repeat('x', 300000)])`, [], LIMIT, 'prompts[2]');
  await rejects(`SELECT ${f}(ARRAY['a'], max_tokens := 0)`, [], BAD, 'max_tokens');
  await rejects(`SELECT ${f}(ARRAY(SELECT 'p' || g FROM generate_series(1, 10001) g))`, [], LIMIT, 'prompts', '10001', '10000');
  await rejects(`SELECT steadytext_embed_batch_async(ARRAY['a', NULL])`, [], NULL_, 'steadytext_embed_batch_async: texts[2]');
});

test('steadytext.max_queue_size: a full queue refuses new work, a batch counts all its items', async () => {
  const c = await db.connect();
  await c.query(`UPDATE steadytext_queue SET status = 'cancelled' WHERE status IN ('pending', 'processing')`);
  await c.query(`SET steadytext.max_queue_size = 3`);
  await c.query(`SELECT steadytext_generate_async('one')`);
  await c.query(`SELECT steadytext_embed_async('two')`);
  const n = await queueCount(c);
  await assertSqlError(c, `SELECT steadytext_generate_batch_async(ARRAY['a','b'])`, [], LIMIT, 'steadytext.max_queue_size');
  assert.equal(await queueCount(c), n);
  await c.query(`SELECT steadytext_generate_async('three')`);
  await assertSqlError(c, `SELECT steadytext_generate_async('four')`, [], LIMIT, 'steadytext.max_queue_size = 3');
  assert.equal(await queueCount(c), n + 1);
  await c.query(`SET steadytext.max_queue_size = 0`);
  await c.query(`SELECT steadytext_generate_async('unlimited again')`);
});

test('steadytext_limits lists every limit with its effective value', async () => {
  const c = await db.connect();
  const r = await c.query(`SELECT name, value FROM steadytext_limits()`);
  const m = Object.fromEntries(r.rows.map((x) => [x.name, Number(x.value)]));
  assert.deepEqual(m, {
    max_tokens: 4096, max_prompt_bytes: 262144, max_rerank_documents: 1000, max_batch_items: 10000,
    max_choices: 256, max_pattern_bytes: 4096, max_schema_bytes: 65536, max_schema_depth: 64,
    max_queue_size: 0, cache_max_entries: 10000, sync_timeout_seconds: 30,
    max_queue_per_role: 0, max_priority: 2147483647,
  });
  await c.query(`SET steadytext.max_tokens = 8192`);
  await c.query(`SELECT steadytext_generate_async('p', max_tokens := 8000)`);
  await c.query(`SET steadytext.max_tokens = 'lots'`);
  await assertSqlError(c, `SELECT steadytext_generate_async('p')`, [], BAD, 'steadytext.max_tokens');
});
