// Attacks by a tenant (a login in steadytext_user): calling the internal
// helpers directly, lifting an operator's limits, acting for a role it may
// not SET ROLE to, and using the shared cache as an oracle.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { waitFor } from '../worker/fixtures/queue.ts';
import { makeLogins, one, sqlstate, superuser, type Logins } from './fixtures.ts';

let db: TestDatabase;
let logins: Logins;

before(async () => {
  db = await createTestDatabase();
  logins = await makeLogins('st_tb', {
    a: 'IN ROLE steadytext_user',
    b: 'IN ROLE steadytext_user',
    alice: 'IN ROLE steadytext_user',
    bob: 'IN ROLE steadytext_user',
  });
});

after(async () => {
  await db.drop();
  await logins.drop();
});

/** Everything a tenant could have written: queue, cache, config. */
async function snapshot(): Promise<string> {
  const r = await db.pool.query(
    `SELECT (SELECT md5(coalesce(string_agg(q::text, ',' ORDER BY request_id), '')) FROM steadytext_queue q)
         || (SELECT md5(coalesce(string_agg(c::text, ',' ORDER BY cache_key), '')) FROM steadytext_cache c)
         || (SELECT md5(coalesce(string_agg(k::text, ',' ORDER BY key), '')) FROM steadytext_config k) AS s`);
  return r.rows[0].s;
}

async function error(c: pg.ClientBase, sql: string, params: unknown[] = []): Promise<{ code?: string; message: string }> {
  try {
    await c.query(sql, params);
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message };
  }
  assert.fail(`expected ${sql} to fail`);
}

test('every _steadytext_* helper, called by a tenant with NULL arguments, refuses (42501) or raises a validation error, and writes nothing', async () => {
  const a = await logins.as('a', db.url);
  await a.query(`SELECT steadytext_generate_async('mine', use_cache := false)`);
  const fns = await db.pool.query(
    `SELECT p.oid::regprocedure::text AS sig, p.proname,
            ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t) AS types
     FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE '\\_steadytext\\_%'
     ORDER BY 1`);
  assert.ok(fns.rows.length > 30);
  const before = await snapshot();
  const outcomes: Record<string, string> = {};
  for (const f of fns.rows) {
    const args = (f.types as string[]).map((t) => `NULL::${t}`).join(', ');
    const sql = `SELECT ${f.proname}(${args})`;
    const code = await sqlstate(a, sql);
    outcomes[f.sig] = code ?? 'ok';
    assert.ok(code === undefined || ['42501', '22004', '22023', '54000', '55000', '0A000', '2201B', 'P0002'].includes(code),
      `${sql}: SQLSTATE ${code}`);
  }
  assert.equal(await snapshot(), before, 'a helper wrote something');
  // the writers refuse outright
  for (const name of ['_steadytext_publish_model_ids', '_steadytext_handoff_insert', '_steadytext_handoff_status',
                      '_steadytext_handoff_cancel', '_steadytext_check_queue_size', '_steadytext_scoped_cache_key',
                      '_steadytext_model_id', '_steadytext_queue_stamp', '_steadytext_cache_scope', '_steadytext_scope_key']) {
    const sig = Object.keys(outcomes).find((s) => s.startsWith(name + '('));
    assert.ok(sig, name);
    assert.equal(outcomes[sig], '42501', sig);
  }
});

test('the enqueue helpers store nothing the public functions refuse: same errors, nothing written', async () => {
  const a = await logins.as('a', db.url);
  const before = await snapshot();
  const p = (o: Record<string, unknown>) => JSON.stringify({ prompt: 'p', max_tokens: 512, use_cache: true, seed: 42, ...o });
  // values the public function refuses: the same SQLSTATE and message
  const same: Array<[string, unknown[], string, unknown[]]> = [
    [`SELECT _steadytext_enqueue('steadytext_generate_async', 'generate', $1::jsonb, 0)`, [p({ max_tokens: 0 })],
     `SELECT steadytext_generate_async('p', max_tokens := 0)`, []],
    [`SELECT _steadytext_enqueue('steadytext_generate_async', 'generate', $1::jsonb, 0)`, [p({ seed: -1 })],
     `SELECT steadytext_generate_async('p', seed := -1)`, []],
    [`SELECT _steadytext_enqueue('steadytext_generate_async', 'generate', $1::jsonb, 0)`, [p({ prompt: '' })],
     `SELECT steadytext_generate_async('')`, []],
    [`SELECT _steadytext_enqueue('steadytext_generate_async', 'generate', $1::jsonb, 0)`, [p({ use_cache: null })],
     `SELECT steadytext_generate_async('p', use_cache := NULL)`, []],
    [`SELECT _steadytext_enqueue('steadytext_generate_async', 'generate', $1::jsonb, NULL)`, [p({})],
     `SELECT steadytext_generate_async('p', priority := NULL)`, []],
    [`SELECT _steadytext_enqueue('steadytext_generate_regex_async', 'generate_regex', $1::jsonb, 0)`, [p({ pattern: '(a' })],
     `SELECT steadytext_generate_regex_async('p', '(a')`, []],
    [`SELECT _steadytext_enqueue('steadytext_generate_choice_async', 'generate_choice', $1::jsonb, 0)`, [p({ choices: ['x', 'x'] })],
     `SELECT steadytext_generate_choice_async('p', ARRAY['x', 'x'])`, []],
    [`SELECT _steadytext_enqueue('steadytext_rerank_async', 'rerank', $1::jsonb, 0)`,
     [JSON.stringify({ query: 'q', documents: null, task: 't', use_cache: true, seed: 42 })],
     `SELECT steadytext_rerank_async('q', NULL, 't')`, []],
    [`SELECT _steadytext_enqueue_batch('steadytext_generate_batch_async', 'generate', $1::jsonb, ARRAY['ok', ''], 0)`,
     [JSON.stringify({ max_tokens: 512, use_cache: true, seed: 42 })],
     `SELECT steadytext_generate_batch_async(ARRAY['ok', ''])`, []],
    [`SELECT _steadytext_enqueue_batch('steadytext_generate_batch_async', 'generate', $1::jsonb, ARRAY['ok'], 0)`,
     [JSON.stringify({ max_tokens: 9999, use_cache: true, seed: 42 })],
     `SELECT steadytext_generate_batch_async(ARRAY['ok'], max_tokens := 9999)`, []],
    [`SELECT _steadytext_cache_lookup('steadytext_generate', 'generate', $1::jsonb)`, [p({ max_tokens: -5 })],
     `SELECT steadytext_generate('p', max_tokens := -5)`, []],
  ];
  for (const [helper, hp, pub, pp] of same) {
    const h = await error(a, helper, hp);
    const e = await error(a, pub, pp);
    assert.deepEqual(h, e, `${helper} ${JSON.stringify(hp)} vs ${pub}`);
  }
  // what only a direct call can pass (wrong JSON types, unknown or missing
  // arguments, another function's shape) is refused too
  const refused: Array<[string, unknown[], string, string]> = [
    [`SELECT _steadytext_enqueue('x', 'generate', $1::jsonb, 0)`, [p({ use_cache: 'yes' })], '22023', 'use_cache must be a boolean'],
    [`SELECT _steadytext_enqueue('x', 'generate', $1::jsonb, 0)`, [p({ max_tokens: '512' })], '22023', 'max_tokens must be an integer'],
    [`SELECT _steadytext_enqueue('x', 'generate', $1::jsonb, 0)`, [p({ max_tokens: 1.5 })], '22023', 'max_tokens must be an integer'],
    [`SELECT _steadytext_enqueue('x', 'generate', $1::jsonb, 0)`, [p({ prompt: ['a'] })], '22023', 'prompt must be text'],
    [`SELECT _steadytext_enqueue('x', 'generate', $1::jsonb, 0)`, [p({ schema: {} })], '22023', 'is not an argument'],
    [`SELECT _steadytext_enqueue('x', 'generate', $1::jsonb, 0)`, [JSON.stringify({ prompt: 'p', max_tokens: 5, use_cache: true })], '22004', 'seed'],
    [`SELECT _steadytext_enqueue('x', 'drop_tables', $1::jsonb, 0)`, [p({})], '22023', 'not a steadytext function'],
    [`SELECT _steadytext_enqueue('x', 'generate', '[1]'::jsonb, 0)`, [], '22023', 'JSON object'],
    [`SELECT _steadytext_enqueue_batch('x', 'generate', $1::jsonb, ARRAY['a'], 0)`,
     [JSON.stringify({ max_tokens: 5, use_cache: 'no', seed: 1 })], '22023', 'use_cache must be a boolean'],
    [`SELECT _steadytext_enqueue_batch('x', 'generate', $1::jsonb, ARRAY['a'], 0)`,
     [JSON.stringify({ prompt: 'smuggled', max_tokens: 5, use_cache: true, seed: 1 })], '22023', 'without prompt'],
    [`SELECT _steadytext_enqueue_batch('x', 'rerank', '{}'::jsonb, ARRAY['a'], 0)`, [], '22023', 'no batch form'],
    [`SELECT _steadytext_cache_lookup('x', 'generate', $1::jsonb)`, [p({ use_cache: 1 })], '22023', 'use_cache must be a boolean'],
  ];
  for (const [sql, params, code, part] of refused) {
    const e = await error(a, sql, params);
    assert.equal(e.code, code, `${sql} ${JSON.stringify(params)}: ${e.message}`);
    assert.ok(e.message.includes(part), `${e.message} should mention ${part}`);
  }
  assert.equal(await snapshot(), before, 'a refused call wrote something');
  // and a valid direct call stores exactly what the public function would
  const id = (await one(a, `SELECT _steadytext_enqueue('x', 'generate', $1::jsonb, 0) AS id`, [p({ use_cache: false })])).id;
  const row = await one(db.pool, `SELECT parameters, owner_role, status FROM steadytext_queue WHERE request_id = $1`, [id]);
  assert.deepEqual(row, { parameters: { prompt: 'p', max_tokens: 512, use_cache: false, seed: 42 }, owner_role: logins.names.a, status: 'pending' });
});

test('limits an operator set (ALTER DATABASE, ALTER SYSTEM) are not lifted by a tenant\'s SET, PGOPTIONS or ALTER ROLE on itself', async () => {
  await db.pool.query(`ALTER DATABASE ${db.name} SET steadytext.max_prompt_bytes = 100`);
  try {
    const a = await logins.as('a', db.url);
    assert.equal(Number((await one(a, `SELECT value FROM steadytext_limits() WHERE name = 'max_prompt_bytes'`)).value), 100);
    const big = 'x'.repeat(200);
    // SET in the session
    await a.query(`SET steadytext.max_prompt_bytes = 1000000`);
    assert.equal(Number((await one(a, `SELECT value FROM steadytext_limits() WHERE name = 'max_prompt_bytes'`)).value), 100);
    assert.equal(await sqlstate(a, `SELECT steadytext_generate_async($1)`, [big]), '54000');
    // a tenant may tighten its own limit
    await a.query(`SET steadytext.max_prompt_bytes = 50`);
    assert.equal(await sqlstate(a, `SELECT steadytext_generate_async($1)`, ['y'.repeat(60)]), '54000');
    // ALTER ROLE on itself (PostgreSQL refuses it for a custom parameter a
    // non-superuser sets; where it is accepted it changes nothing), then a
    // new session
    const alter = await sqlstate(a, `ALTER ROLE ${logins.names.a} SET steadytext.max_prompt_bytes = 1000000`);
    assert.ok(alter === undefined || alter === '42501', `ALTER ROLE: ${alter}`);
    const a2 = await logins.as('a', db.url);
    assert.equal(await sqlstate(a2, `SELECT steadytext_generate_async($1)`, [big]), '54000');
    // PGOPTIONS (options in the connection)
    const a3 = new pg.Client({ connectionString: logins.urlAs('a', db.url), options: '-c steadytext.max_prompt_bytes=1000000' });
    await a3.connect();
    try {
      assert.equal(await sqlstate(a3, `SELECT steadytext_generate_async($1)`, [big]), '54000');
    } finally {
      await a3.end();
    }
    // an operator's own session sets what it likes
    const su = await db.connect();
    await su.query(`SET steadytext.max_prompt_bytes = 1000000`);
    await su.query(`SELECT steadytext_generate_async($1, use_cache := false)`, [big]);
  } finally {
    await db.pool.query(`ALTER DATABASE ${db.name} RESET steadytext.max_prompt_bytes`);
    await superuser((c) => c.query(`ALTER ROLE ${logins.names.a} RESET ALL`));
  }

  // ALTER SYSTEM (postgresql.auto.conf), read through pg_file_settings; a
  // value no other test file depends on (max_queue_per_role = 1000000)
  await superuser(async (c) => {
    const v = Number((await c.query(`SELECT current_setting('server_version_num') AS v`)).rows[0].v);
    if (v < 170000) await c.query(`SET steadytext.max_queue_per_role = 1`); // the placeholder ALTER SYSTEM needs before 17
    await c.query(`ALTER SYSTEM SET steadytext.max_queue_per_role = 1000000`);
    await c.query(`SELECT pg_reload_conf()`);
  });
  try {
    const seen = await waitFor('a new session sees the ALTER SYSTEM value', async () => {
      const a = new pg.Client({ connectionString: logins.urlAs('a', db.url) });
      await a.connect();
      try {
        if ((await one(a, `SELECT current_setting('steadytext.max_queue_per_role', true) AS v`)).v !== '1000000') return null;
        await a.query(`SET steadytext.max_queue_per_role = 0`); // "unlimited": not the tenant's to say
        const lifted = Number((await one(a, `SELECT value FROM steadytext_limits() WHERE name = 'max_queue_per_role'`)).value);
        await a.query(`SET steadytext.max_queue_per_role = 5`);
        const tightened = Number((await one(a, `SELECT value FROM steadytext_limits() WHERE name = 'max_queue_per_role'`)).value);
        return { lifted, tightened };
      } finally {
        await a.end();
      }
    });
    assert.deepEqual(seen, { lifted: 1000000, tightened: 5 });
  } finally {
    await superuser(async (c) => {
      await c.query(`ALTER SYSTEM RESET steadytext.max_queue_per_role`);
      await c.query(`SELECT pg_reload_conf()`);
    });
  }
});

test('per-role quota and priority ceiling: the error names the limit that was hit; another role is unaffected', async () => {
  await db.pool.query(`UPDATE steadytext_queue SET status = 'cancelled' WHERE status IN ('pending', 'processing')`);
  await db.pool.query(`ALTER DATABASE ${db.name} SET steadytext.max_queue_per_role = 2`);
  await db.pool.query(`ALTER DATABASE ${db.name} SET steadytext.max_priority = 10`);
  try {
    const a = await logins.as('a', db.url);
    const b = await logins.as('b', db.url);
    await a.query(`SET steadytext.max_queue_per_role = 0`);
    await a.query(`SELECT steadytext_generate_async('a1', use_cache := false)`);
    await a.query(`SELECT steadytext_generate_async('a2', use_cache := false)`);
    const full = await error(a, `SELECT steadytext_generate_async('a3', use_cache := false)`);
    assert.equal(full.code, '54000');
    assert.match(full.message, /steadytext\.max_queue_per_role = 2/);
    assert.ok(full.message.includes(logins.names.a), full.message);
    // B has its own quota: one fits, a batch of two more does not (all items count)
    await b.query(`SELECT steadytext_generate_async('b1', use_cache := false)`);
    const batch = await error(b, `SELECT steadytext_generate_batch_async(ARRAY['b2', 'b3'], use_cache := false)`);
    assert.equal(batch.code, '54000');
    assert.match(batch.message, /max_queue_per_role/);
    // the global limit is named as such
    await db.pool.query(`ALTER DATABASE ${db.name} SET steadytext.max_queue_size = 3`);
    const b2 = await logins.as('b', db.url);
    const global = await error(b2, `SELECT steadytext_generate_async('b2', use_cache := false)`);
    assert.equal(global.code, '54000');
    assert.match(global.message, /steadytext\.max_queue_size = 3/);
    assert.doesNotMatch(global.message, /max_queue_per_role/);
    // priority ceiling, not liftable by SET
    await a.query(`SET steadytext.max_priority = 1000`);
    const prio = await error(a, `SELECT steadytext_embed_async('p', priority := 11)`);
    assert.equal(prio.code, '22023');
    assert.match(prio.message, /steadytext_embed_async: priority must be at most 10, got 11/);
    assert.equal(await sqlstate(a, `SELECT steadytext_embed_batch_async(ARRAY['x'], priority := 11)`), '22023');
  } finally {
    for (const g of ['max_queue_per_role', 'max_priority', 'max_queue_size']) {
      await db.pool.query(`ALTER DATABASE ${db.name} RESET steadytext.${g}`);
    }
  }
});

test('acting for another role needs the right to SET ROLE to it, not mere membership', async () => {
  const alice = await logins.as('alice', db.url);
  const idAlice = (await one(alice, `SELECT steadytext_generate_async('alice''s', use_cache := false) AS id`)).id;
  const version = Number((await one(db.pool, `SELECT current_setting('server_version_num') AS v`)).v);
  const params = JSON.stringify({ prompt: 'planted', max_tokens: 5, use_cache: false, seed: 1 });
  const { alice: A, bob: B } = logins.names;
  if (version >= 160000) {
    // bob is a member of alice but may neither inherit nor SET ROLE to her
    await db.pool.query(`GRANT ${A} TO ${B} WITH INHERIT FALSE, SET FALSE`);
    const bob = await logins.as('bob', db.url);
    assert.equal(await sqlstate(bob, `SET ROLE ${A}`), '42501');
    assert.equal(await sqlstate(bob, `SELECT _steadytext_cancel($1, $2)`, [idAlice, A]), '42501');
    assert.equal(await sqlstate(bob, `SELECT _steadytext_retry($1, $2)`, [idAlice, A]), '42501');
    assert.equal(await sqlstate(bob, `SELECT _steadytext_enqueue('x', 'generate', $1::jsonb, 0, $2)`, [params, A]), '42501');
    assert.equal(await sqlstate(bob, `SELECT _steadytext_enqueue_batch('x', 'generate', '{"max_tokens":5,"use_cache":false,"seed":1}', ARRAY['p'], 0, $1)`, [A]), '42501');
    assert.equal((await one(db.pool, `SELECT status FROM steadytext_queue WHERE request_id = $1`, [idAlice])).status, 'pending');
    assert.equal((await one(db.pool, `SELECT count(*)::int AS n FROM steadytext_queue WHERE owner_role = $1`, [A])).n, 1);
    // with SET, it may
    await db.pool.query(`GRANT ${A} TO ${B} WITH SET TRUE`);
  } else {
    // PostgreSQL 15: SET ROLE needs exactly membership; a non-member is refused
    const bob = await logins.as('bob', db.url);
    assert.equal(await sqlstate(bob, `SELECT _steadytext_cancel($1, $2)`, [idAlice, A]), '42501');
    assert.equal(await sqlstate(bob, `SELECT _steadytext_enqueue('x', 'generate', $1::jsonb, 0, $2)`, [params, A]), '42501');
    await db.pool.query(`GRANT ${A} TO ${B}`);
  }
  const bob = await logins.as('bob', db.url);
  assert.equal((await one(bob, `SELECT _steadytext_cancel($1, $2) AS ok`, [idAlice, A])).ok, true);
});

test('cache scope: shared by default (documented oracle); per owner role when an admin sets cache_scope = role', async () => {
  const a = await logins.as('a', db.url);
  const b = await logins.as('b', db.url);
  /** What a worker does when it completes a request with use_cache: the result under the row's cache_key. */
  const complete = async (id: string, result: string) => {
    await db.pool.query(`UPDATE steadytext_queue SET status = 'completed', result = $2 WHERE request_id = $1`, [id, result]);
    await db.pool.query(
      `INSERT INTO steadytext_cache (cache_key, function_name, model_id, parameters, result)
       SELECT cache_key, function_name, model_id, parameters, $2 FROM steadytext_queue WHERE request_id = $1`, [id, result]);
  };
  const status = async (c: pg.Client, prompt: string) => {
    const id = (await one(c, `SELECT steadytext_generate_async($1) AS id`, [prompt])).id;
    return (await one(c, `SELECT status FROM steadytext_check_async($1)`, [id])).status;
  };
  // shared: B learns that someone asked A's exact prompt
  await complete((await one(a, `SELECT steadytext_generate_async('shared secret 7') AS id`)).id, 'R');
  assert.equal(await status(b, 'shared secret 7'), 'completed');
  // per role
  await db.pool.query(`INSERT INTO steadytext_config (key, value) VALUES ('cache_scope', '"role"')`);
  try {
    await complete((await one(a, `SELECT steadytext_generate_async('role secret 7') AS id`)).id, 'R');
    assert.equal(await status(a, 'role secret 7'), 'completed');
    assert.equal(await status(b, 'role secret 7'), 'pending');
    // the synchronous path looks up the same way
    assert.equal((await one(a, `SELECT steadytext_generate('role secret 7') AS r`)).r, 'R');
    // a tenant cannot change the scope
    assert.equal(await sqlstate(b, `UPDATE steadytext_config SET value = '"shared"' WHERE key = 'cache_scope'`), '42501');
  } finally {
    await db.pool.query(`DELETE FROM steadytext_config WHERE key = 'cache_scope'`);
  }
});
