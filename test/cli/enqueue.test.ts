// `steadytext enqueue`: every job type from the shell, through the SQL
// functions; the UUID on stdout, SQL's own errors on stderr with exit 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { runCli } from './fixtures/cli.ts';

// db.drop() ends the pool, then DROP DATABASE ... WITH (FORCE): a backend still closing
// reports 57P01 to its (removed) client, which the pool re-emits; without a listener
// that would be an uncaught exception in whichever test runs next.
const ignoreDropError = () => {};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

test('enqueue prints the request id of each job type, with its flags in the row', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const env = { DATABASE_URL: db.url };
  const row = async (id: string) =>
    (await db.pool.query(`SELECT function_name, parameters, priority, status FROM steadytext_queue WHERE request_id = $1`, [id])).rows[0];
  const enqueue = async (...args: string[]) => {
    const r = await runCli(['enqueue', ...args], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const id = r.stdout.trimEnd();
    assert.match(id, UUID, `stdout is the request id: ${JSON.stringify(r.stdout)}`);
    return row(id);
  };
  try {
    assert.deepEqual(await enqueue('generate', 'Write a haiku', '--max-tokens', '50', '--seed', '1', '--priority', '2'), {
      function_name: 'generate',
      parameters: { prompt: 'Write a haiku', max_tokens: 50, seed: 1, use_cache: true },
      priority: 2,
      status: 'pending',
    });
    assert.deepEqual((await enqueue('embed', 'some text', '--no-cache')).parameters, { text_input: 'some text', use_cache: false });
    const json = await enqueue('json', 'A person', '--schema', '{"type":"object","properties":{"name":{"type":"string"}}}');
    assert.equal(json.function_name, 'generate_json');
    assert.deepEqual(json.parameters.schema, { type: 'object', properties: { name: { type: 'string' } } });
    const regex = await enqueue('regex', 'Call me at', '--pattern', '\\d+');
    assert.equal(regex.function_name, 'generate_regex');
    assert.equal(regex.parameters.pattern, '\\d+');
    const choice = await enqueue('choice', 'Is it good?', '--choices', 'a,b,c');
    assert.deepEqual(choice.parameters.choices, ['a', 'b', 'c']);
    const rerank = await enqueue('rerank', 'red apple', 'doc one', 'doc two', '--task', 'find fruit', '--seed', '3');
    assert.equal(rerank.function_name, 'rerank');
    assert.deepEqual(rerank.parameters, {
      query: 'red apple',
      documents: ['doc one', 'doc two'],
      task: 'find fruit',
      seed: 3,
      use_cache: true,
    });

    // --json: {"request_id": ...}; batches: one id per line, or {"request_ids": [...]}
    const j = await runCli(['enqueue', 'generate', 'hi', '--json'], env);
    assert.equal(j.code, 0);
    assert.match(JSON.parse(j.stdout).request_id, UUID);
    assert.deepEqual(Object.keys(JSON.parse(j.stdout)), ['request_id']);
    const batch = await runCli(['enqueue', 'generate-batch', 'one', 'two', 'three', '--seed', '9'], env);
    const ids = batch.stdout.trimEnd().split('\n');
    assert.equal(ids.length, 3);
    assert.ok(ids.every((id) => UUID.test(id)));
    assert.equal((await row(ids[2])).parameters.prompt, 'three');
    const eb = await runCli(['enqueue', 'embed-batch', 'x', 'y', '--json'], env);
    assert.equal(JSON.parse(eb.stdout).request_ids.length, 2);
  } finally {
    await db.drop();
  }
});

test('a rejected argument prints the SQL error and exits 1, enqueuing nothing', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const env = { DATABASE_URL: db.url };
  try {
    const r = await runCli(['enqueue', 'generate', 'x', '--max-tokens', '0'], env);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^steadytext: .*max_tokens.*\(SQLSTATE 22023\)/m);

    const choice = await runCli(['enqueue', 'choice', 'x', '--choices', 'a,,b'], env);
    assert.equal(choice.code, 1);
    assert.match(choice.stderr, /choice/);

    const schema = await runCli(['enqueue', 'json', 'x', '--schema', '{not json'], env);
    assert.equal(schema.code, 1);
    assert.match(schema.stderr, /invalid input syntax for type json.*22P02/s);

    const notNumber = await runCli(['enqueue', 'generate', 'x', '--seed', 'abc'], env);
    assert.equal(notNumber.code, 1);
    assert.match(notNumber.stderr, /steadytext_generate_async: invalid input syntax for type integer: "abc"/);

    const missing = await runCli(['enqueue', 'regex', 'x'], env);
    assert.equal(missing.code, 2, 'a missing required option is a usage error');
    assert.match(missing.stderr, /--pattern/);

    const unknownFlag = await runCli(['enqueue', 'generate', 'x', '--bogus'], env);
    assert.equal(unknownFlag.code, 2);
    assert.match(unknownFlag.stderr, /unknown option '--bogus'/);

    const n = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue`);
    assert.equal(n.rows[0].n, 0);
  } finally {
    await db.drop();
  }
});

test('no database, an unreachable one, or one without pg_steadytext: exit 2, 3, 1', async () => {
  const empty = await createTestDatabase({ empty: true });
  empty.pool.on('error', ignoreDropError);
  try {
    const noUrl = await runCli(['enqueue', 'generate', 'x'], { DATABASE_URL: '' });
    assert.equal(noUrl.code, 2);
    assert.match(noUrl.stderr, /DATABASE_URL/);

    const down = await runCli(['enqueue', 'generate', 'x', '--database-url', 'postgres://postgres@127.0.0.1:1/nothing']);
    assert.equal(down.code, 3);
    assert.match(down.stderr, /cannot connect/);

    const bare = await runCli(['enqueue', 'generate', 'x'], { DATABASE_URL: empty.url });
    assert.equal(bare.code, 1);
    assert.match(bare.stderr, /pg_steadytext is not installed.*steadytext migrate/);
  } finally {
    await empty.drop();
  }
});
