// Pipelines' SQL surface (schema 1.5.0, docs/pipelines.md): what a
// declaration accepts and refuses, what the triggers record, who may do what,
// and the write rules a worker's batch meets (driven here with the worker's
// own functions, as a worker login, so each rule is seen on its own).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { makeLogins, one, sqlstate, type Logins } from '../security/fixtures.ts';
import { assertSqlError } from './helpers.ts';

let db: TestDatabase;
let logins: Logins;
let alice: pg.Client;
let bob: pg.Client;
let wrk: pg.Client;

const MODELS = JSON.stringify({ embedding: 'default-embedding', generation: 'default-generation' });

before(async () => {
  db = await createTestDatabase();
  logins = await makeLogins('st_pipe', {
    alice: 'IN ROLE steadytext_user',
    bob: 'IN ROLE steadytext_user',
    wrk: 'IN ROLE steadytext_worker',
  });
  alice = await logins.as('alice', db.url);
  bob = await logins.as('bob', db.url);
  wrk = await logins.as('wrk', db.url);
  await db.pool.query(`GRANT CREATE ON SCHEMA public TO ${logins.names.alice}, ${logins.names.bob}`);
  await wrk.query(`INSERT INTO steadytext_workers (worker_id, host, pid) VALUES ('w1', 'test', 1), ('w2', 'test', 2)`);
});
after(async () => {
  for (const c of [alice, bob, wrk]) await c?.end();
  await logins?.drop();
  await db.drop();
});

interface Claimed { pipeline_id: number; row_key: unknown; claim: string; input: string | null; input_hash: string | null; dimensions: number | null }

/** A worker's claim of up to `n` rows (as the worker login). */
async function claim(n = 100, worker = 'w1'): Promise<Claimed[]> {
  return (await wrk.query(`SELECT * FROM _steadytext_pipeline_claim($1, $2, $3)`, [worker, n, MODELS])).rows;
}

/** The worker's write of `results` (default: a vector made from each input) for claimed rows. */
async function write(rows: Claimed[], results?: (string | null)[], errors?: (string | null)[], worker = 'w1') {
  const r = await wrk.query(
    `SELECT * FROM _steadytext_pipeline_write($1, $2, 'default-embedding', $3::jsonb[], $4::bigint[], $5::text[], $6::text[], $7::text[])`,
    [
      rows[0].pipeline_id,
      worker,
      rows.map((x) => JSON.stringify(x.row_key)),
      rows.map((x) => x.claim),
      rows.map((x) => x.input_hash),
      results ?? rows.map((x) => (x.input === null ? null : `[${x.input.length},1]`)),
      errors ?? rows.map(() => null),
    ],
  );
  return Object.fromEntries(r.rows.map((x) => [x.outcome, Number(x.rows)]));
}

/** Claims and writes until nothing is left to claim. */
async function drain(): Promise<void> {
  for (;;) {
    const rows = await claim();
    if (rows.length === 0) return;
    await write(rows);
  }
}

const status = async (c: pg.ClientBase | pg.Pool, name: string) => one(c, `SELECT * FROM steadytext_pipeline_status($1)`, [name]);

test('a declaration with bad arguments is refused with the argument named, and changes nothing', async () => {
  await alice.query(`CREATE TABLE bad_src (id int PRIMARY KEY, body text, emb real[], n int, CHECK (n IS NULL OR n > 0))`);
  await alice.query(`CREATE TABLE no_pk (body text, emb real[])`);
  const create = `SELECT steadytext_pipeline_create($1, $2, $3, $4, $5, $6::jsonb, $7, false, $8)`;
  const cases: [unknown[], string, string][] = [
    [[null, 'bad_src', 'body', 'emb', 'embed', '{}', 0, null], '22004', 'name'],
    [['p', 'bad_src', null, 'emb', 'embed', '{}', 0, null], '22004', 'input'],
    [['p', 'bad_src', 'nosuch || body', 'emb', 'embed', '{}', 0, null], '22023', 'input'],
    [['p', 'no_pk', 'body', 'emb', 'embed', '{}', 0, null], '22023', 'primary key'],
    [['p', 'bad_src', 'body', 'nosuch', 'embed', '{}', 0, null], '42703', 'destination'],
    [['p', 'bad_src', 'body', 'n', 'embed', '{}', 0, null], '42804', 'destination'],
    [['p', 'bad_src', 'body', 'id', 'embed', '{}', 0, null], '22023', 'destination'],
    [['p', 'bad_src', 'body', 'emb', 'rerank', '{}', 0, null], '22023', 'function_name'],
    [['p', 'bad_src', 'body', 'emb', 'embed', '{"text_input": "x"}', 0, null], '22023', 'text_input'],
    [['p', 'bad_src', 'body', 'body', 'generate', '{"max_tokens": 0}', 0, null], '22023', 'max_tokens'],
    [['p', 'bad_src', 'body', 'body', 'generate_choice', '{}', 0, null], '22004', 'choices'],
    [['p', 'bad_src', 'body', 'emb', 'embed', '{}', 0, 0], '22023', 'batch_size'],
    [['p', 'bad_src', 'body', 'emb', 'embed', '{}', null, null], '22004', 'priority'],
  ];
  for (const [args, code, part] of cases) {
    await assertSqlError(alice, create, args, code, part).catch((e) => assert.fail(`${JSON.stringify(args)}: ${e.message}`));
  }
  assert.equal((await one(db.pool, `SELECT count(*)::int AS n FROM steadytext_pipelines`)).n, 0);
  assert.equal((await one(db.pool, `SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = 'bad_src'::regclass`)).n, 0);
  await alice.query(`SELECT steadytext_pipeline_create('dup', 'bad_src', 'body', 'emb')`);
  await assertSqlError(alice, `SELECT steadytext_pipeline_create('dup', 'bad_src', 'body', 'emb')`, [], '42710', 'dup');
  await alice.query(`SELECT steadytext_pipeline_drop('dup')`);
});

test('inserts, input changes, deletes and COPY are recorded; a change of another column is not', async () => {
  await alice.query(`CREATE TABLE notes (id int PRIMARY KEY, title text, body text, other int, emb real[])`);
  await alice.query(`INSERT INTO notes SELECT g, 't' || g, 'b' || g FROM generate_series(1, 50) g`);
  await alice.query(`SELECT steadytext_pipeline_create('notes_emb', 'notes', 'title || '': '' || body', 'emb', 'embed', '{}', 0, false, 20)`);
  // the backfill is visible from the first call, before any worker ran
  const s0 = await status(alice, 'notes_emb');
  assert.equal(Number(s0.rows), 50);
  assert.equal(Number(s0.pending), 50);
  assert.equal(s0.backfilling, true);
  await drain();
  const s1 = await status(alice, 'notes_emb');
  assert.deepEqual([Number(s1.done), Number(s1.pending), s1.coverage, s1.backfilling], [50, 0, 100, false]);
  const emb = await one(alice, `SELECT emb FROM notes WHERE id = 7`);
  assert.deepEqual(emb.emb, ['t7: b7'.length, 1]);
  // the embedding size is learnt from the first write: later batches are checked against it
  assert.equal((await one(alice, `SELECT dimensions FROM steadytext_pipelines WHERE name = 'notes_emb'`)).dimensions, 2);
  await alice.query(`UPDATE notes SET body = 'again' WHERE id = 1`);
  assert.equal((await claim())[0].dimensions, 2);
  await drain();

  const pending = async () =>
    (await db.pool.query(`SELECT row_key FROM steadytext_pipeline_rows r JOIN steadytext_pipelines p USING (pipeline_id)
                          WHERE p.name = 'notes_emb' AND r.status = 'pending' ORDER BY 1`)).rows.map((r) => r.row_key);
  await alice.query(`UPDATE notes SET other = 1`);
  assert.deepEqual(await pending(), [], 'another column changed: nothing to recompute');
  await alice.query(`UPDATE notes SET body = 'new' WHERE id IN (3, 4)`);
  await alice.query(`UPDATE notes SET title = title WHERE id = 5`);  // same input
  await alice.query(`INSERT INTO notes (id, title, body) VALUES (100, 'a', 'b')`);
  await alice.query(`DELETE FROM notes WHERE id = 9`);
  assert.deepEqual(await pending(), [[3], [4], [100]]);
  assert.equal((await one(db.pool, `SELECT count(*)::int AS n FROM steadytext_pipeline_rows WHERE row_key = '[9]'`)).n, 0);
  await alice.query(`COPY notes (id, title, body) FROM PROGRAM 'printf "200\\tc\\td\\n"'`).catch(async () => {
    // COPY FROM PROGRAM needs superuser: COPY from STDIN is what a client does; the trigger is the same
    await db.pool.query(`COPY notes (id, title, body) FROM PROGRAM 'printf "200\\tc\\td\\n"'`);
  });
  assert.deepEqual(await pending(), [[3], [4], [100], [200]]);
  await drain();
  assert.deepEqual((await one(alice, `SELECT emb FROM notes WHERE id = 3`)).emb, ['t3: new'.length, 1]);
  await alice.query(`TRUNCATE notes`);
  assert.equal(Number((await status(alice, 'notes_emb')).rows), 0);
  await alice.query(`SELECT steadytext_pipeline_drop('notes_emb')`);
});

test('the worker role writes a user table only through the pipeline, with its creator\'s rights', async () => {
  await alice.query(`CREATE TABLE private_docs (id int PRIMARY KEY, body text, emb real[])`);
  await alice.query(`INSERT INTO private_docs VALUES (1, 'x'), (2, 'yy')`);
  await alice.query(`SELECT steadytext_pipeline_create('priv', 'private_docs', 'body', 'emb')`);
  assert.equal(await sqlstate(wrk, `SELECT * FROM private_docs`), '42501');
  assert.equal(await sqlstate(wrk, `UPDATE private_docs SET emb = NULL`), '42501');
  const owner = await one(db.pool, `SELECT DISTINCT pg_get_userbyid(proowner) AS o FROM pg_proc WHERE proname LIKE '\\_stxp\\_%\\_write'
                                    AND pronamespace = 'public'::regnamespace AND proname = '_stxp_' || (SELECT pipeline_id FROM steadytext_pipelines WHERE name = 'priv') || '_write'`);
  assert.equal(owner.o, logins.names.alice);
  // the worker cannot call the creator's functions itself
  const id = (await one(db.pool, `SELECT pipeline_id FROM steadytext_pipelines WHERE name = 'priv'`)).pipeline_id;
  assert.equal(await sqlstate(wrk, `SELECT * FROM _stxp_${id}_read(ARRAY['[1]'::jsonb])`), '42501');
  await drain();
  assert.deepEqual((await alice.query(`SELECT id, emb FROM private_docs ORDER BY id`)).rows, [{ id: 1, emb: [1, 1] }, { id: 2, emb: [2, 1] }]);

  // another role: cannot see, change or write through it; cannot declare one on a table it may not write
  assert.equal((await bob.query(`SELECT * FROM steadytext_pipeline_status()`)).rows.length, 0);
  await assertSqlError(bob, `SELECT steadytext_pipeline_pause('priv')`, [], '42704', 'priv');
  await assertSqlError(bob, `SELECT steadytext_pipeline_drop('priv')`, [], '42704', 'priv');
  await assertSqlError(bob, `SELECT * FROM steadytext_pipeline_status('priv')`, [], '42704', 'priv');
  assert.equal(await sqlstate(bob, `SELECT * FROM steadytext_pipeline_rows`), undefined);
  assert.equal((await bob.query(`SELECT * FROM steadytext_pipeline_rows`)).rows.length, 0);
  assert.equal(await sqlstate(bob, `INSERT INTO steadytext_pipeline_rows (pipeline_id, row_key) VALUES (${id}, '[1]')`), '42501');
  await alice.query(`GRANT SELECT ON private_docs TO ${logins.names.bob}`);
  await assertSqlError(bob, `SELECT steadytext_pipeline_create('bobs', 'private_docs', 'body', 'emb')`, [], '42501', 'TRIGGER');
  await alice.query(`GRANT TRIGGER ON private_docs TO ${logins.names.bob}`);
  await assertSqlError(bob, `SELECT steadytext_pipeline_create('bobs', 'private_docs', 'body', 'emb')`, [], '42501', 'UPDATE');
  await alice.query(`SELECT steadytext_pipeline_drop('priv')`);
  assert.equal((await one(db.pool, `SELECT count(*)::int AS n FROM pg_proc WHERE proname LIKE '\\_stxp\\_${id}\\_%'`)).n, 0);
  assert.equal((await one(db.pool, `SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = 'private_docs'::regclass`)).n, 0);
  assert.deepEqual((await alice.query(`SELECT emb FROM private_docs WHERE id = 1`)).rows[0].emb, [1, 1], 'the values stay');
});

test('a batch writes only what is still current: stale, busy, failed and lost rows each get their due', async () => {
  await alice.query(`CREATE TABLE t (id int PRIMARY KEY, body text, emb real[] CHECK (emb IS NULL OR emb[1] < 100))`);
  await alice.query(`INSERT INTO t SELECT g, repeat('x', g) FROM generate_series(1, 6) g`);
  await alice.query(`SELECT steadytext_pipeline_create('rules', 't', 'body', 'emb')`);
  const rows = await claim();
  assert.equal(rows.length, 6);
  // row 1 changes while the batch is on the engine; row 2 is held by a session
  await alice.query(`UPDATE t SET body = 'changed' WHERE id = 1`);
  await bob.query('BEGIN');
  await alice.query(`GRANT SELECT, UPDATE ON t TO ${logins.names.bob}`);
  await bob.query(`SELECT * FROM t WHERE id = 2 FOR UPDATE`);
  // row 3's result breaks the CHECK; row 4 the engine refused
  const results = rows.map((x) => (JSON.stringify(x.row_key) === '[3]' ? '[500,1]' : `[${x.input!.length},1]`));
  const errors = rows.map((x) => (JSON.stringify(x.row_key) === '[4]' ? 'input too long' : null));
  const out = await write(rows, results, errors);
  assert.deepEqual(out, { written: 2, stale: 0, busy: 1, failed: 2, lost: 1 });
  const t = Object.fromEntries((await alice.query(`SELECT id, emb FROM t`)).rows.map((r) => [r.id, r.emb]));
  assert.equal(t[1], null, 'the stale result was not written');
  assert.equal(t[2], null);
  assert.equal(t[3], null);
  assert.deepEqual(t[5], [5, 1]);
  const failures = (await alice.query(`SELECT row_key, error FROM steadytext_pipeline_failures('rules') ORDER BY row_key`)).rows;
  assert.deepEqual(failures.map((f) => f.row_key), [[3], [4]]);
  assert.match(failures[0].error, /check constraint/);
  assert.equal(failures[1].error, 'input too long');
  // a second write of the same claim changes nothing
  assert.deepEqual(await write(rows), { written: 0, stale: 0, busy: 0, failed: 0, lost: 6 });
  await bob.query('COMMIT');
  // the changed row comes back at once, the busy one after a second
  const seen: unknown[] = [];
  for (let i = 0; i < 800 && seen.length < 2; i++) {
    const r = await claim();
    if (r.length) await write(r);
    seen.push(...r.map((x) => x.row_key));
    if (seen.length < 2) await new Promise((res) => setTimeout(res, 25));
  }
  assert.deepEqual(seen, [[1], [2]]);
  assert.deepEqual((await alice.query(`SELECT emb FROM t WHERE id = 1`)).rows[0].emb, ['changed'.length, 1]);
  assert.equal(await alice.query(`SELECT steadytext_pipeline_retry('rules')`).then((r) => Number(r.rows[0].steadytext_pipeline_retry)), 2);
  const retried = await claim();
  assert.equal(retried.length, 2);
  await write(retried);
  const s = await status(alice, 'rules');
  assert.deepEqual([Number(s.done), Number(s.failed), Number(s.pending)], [6, 0, 0]);
  await alice.query(`SELECT steadytext_pipeline_drop('rules')`);
});

test('a change of parameters or model recomputes in the background, old values readable meanwhile', async () => {
  await alice.query(`CREATE TABLE m (id int PRIMARY KEY, body text, emb real[])`);
  await alice.query(`INSERT INTO m SELECT g, 'b' || g FROM generate_series(1, 30) g`);
  await alice.query(`SELECT steadytext_pipeline_create('models', 'm', 'body', 'emb', 'embed', '{}', 0, false, 10)`);
  await drain();
  // a worker on another model publishes it: the pipeline follows it
  await wrk.query(`SELECT _steadytext_publish_model_ids('{"embedding": "next-embedding"}')`);
  const next = JSON.stringify({ embedding: 'next-embedding' });
  const old = (await wrk.query(`SELECT * FROM _steadytext_pipeline_claim('w1', 10, $1)`, [MODELS])).rows;
  assert.equal(old.length, 0, 'a worker on the old model claims nothing');
  const batch = (await wrk.query(`SELECT * FROM _steadytext_pipeline_claim('w1', 10, $1)`, [next])).rows;
  assert.equal(batch.length, 10);
  const mid = await status(alice, 'models');
  assert.equal(mid.model_id, 'next-embedding');
  assert.equal(Number(mid.stale), 30);
  assert.deepEqual(mid.models, { 'default-embedding': 30 });
  assert.equal((await one(alice, `SELECT count(*)::int AS n FROM m WHERE emb IS NOT NULL`)).n, 30, 'old values readable');
  const w = await wrk.query(
    `SELECT * FROM _steadytext_pipeline_write($1, 'w1', 'next-embedding', $2::jsonb[], $3::bigint[], $4::text[], $5::text[], $6::text[])`,
    [batch[0].pipeline_id, batch.map((x) => JSON.stringify(x.row_key)), batch.map((x) => x.claim), batch.map((x) => x.input_hash),
     batch.map(() => '[9,9]'), batch.map(() => null)]);
  assert.equal(Number(w.rows.find((r) => r.outcome === 'written').rows), 10);
  const after1 = await status(alice, 'models');
  assert.deepEqual(after1.models, { 'default-embedding': 20, 'next-embedding': 10 });
  assert.equal(Number(after1.done), 10);
  await wrk.query(`SELECT _steadytext_publish_model_ids('{"embedding": "default-embedding"}')`);

  // a refusal (the model's vectors do not fit) blocks the pipeline with what to do; resume clears it
  const b2 = await claim(5);
  await wrk.query(`SELECT _steadytext_pipeline_refuse($1, 'w1', $2::jsonb[], $3::bigint[], 'model gives 768 dimensions; column is vector(1024): add a vector(768) column')`,
    [b2[0].pipeline_id, b2.map((x) => JSON.stringify(x.row_key)), b2.map((x) => x.claim)]);
  const blocked = await status(alice, 'models');
  assert.match(blocked.last_error, /768/);
  assert.equal((await claim()).length, 0, 'a blocked pipeline is not claimed');
  await alice.query(`SELECT steadytext_pipeline_resume('models')`);
  assert.equal((await status(alice, 'models')).last_error, null);

  // new parameters: a new version, recomputed in the background
  await drain();
  await alice.query(`SELECT steadytext_pipeline_pause('models')`);
  assert.equal((await claim()).length, 0, 'a paused pipeline is not claimed');
  await alice.query(`SELECT steadytext_pipeline_rerun('models')`);
  await alice.query(`SELECT steadytext_pipeline_resume('models')`);
  assert.equal(Number((await status(alice, 'models')).stale), 30);
  await drain();
  const end = await status(alice, 'models');
  assert.deepEqual([Number(end.done), Number(end.stale), end.coverage], [30, 0, 100]);
  await alice.query(`SELECT steadytext_pipeline_drop('models')`);
});

test('interactive work of at least the pipeline\'s priority is claimed first', async () => {
  await alice.query(`CREATE TABLE prio (id int PRIMARY KEY, body text, out text)`);
  await alice.query(`INSERT INTO prio VALUES (1, 'a')`);
  await alice.query(`SELECT steadytext_pipeline_create('prio', 'prio', 'body', 'out', 'generate', '{"max_tokens": 4}', 5)`);
  await alice.query(`SELECT steadytext_generate_async('interactive', priority => 5)`);
  assert.equal((await claim()).length, 0, 'the queue job goes first');
  await db.pool.query(`UPDATE steadytext_queue SET status = 'cancelled' WHERE status = 'pending'`);
  await alice.query(`SELECT steadytext_generate_async('background', priority => 1)`);
  const rows = await claim();
  assert.equal(rows.length, 1, 'a lower-priority queue job does not hold the pipeline back');
  await write(rows, ['"text"']);
  assert.equal((await one(alice, `SELECT out FROM prio`)).out, '"text"');
  await db.pool.query(`UPDATE steadytext_queue SET status = 'cancelled' WHERE status = 'pending'`);
  await alice.query(`SELECT steadytext_pipeline_drop('prio')`);
});

test('rows of a worker that is gone go back to pending', async () => {
  await alice.query(`CREATE TABLE gone (id int PRIMARY KEY, body text, emb real[])`);
  await alice.query(`INSERT INTO gone VALUES (1, 'a'), (2, 'b')`);
  await alice.query(`SELECT steadytext_pipeline_create('gone', 'gone', 'body', 'emb')`);
  const rows = await claim(100, 'w2');
  assert.equal(rows.length, 2);
  await db.pool.query(`UPDATE steadytext_workers SET status = 'dead' WHERE worker_id = 'w2'`);
  assert.equal(Number((await one(wrk, `SELECT _steadytext_pipeline_reclaim() AS n`)).n), 2);
  assert.deepEqual(await write(rows, undefined, undefined, 'w2'), { written: 0, stale: 0, busy: 0, failed: 0, lost: 2 });
  await drain();
  assert.equal(Number((await status(alice, 'gone')).done), 2);
  await alice.query(`SELECT steadytext_pipeline_drop('gone')`);
});

test('a destination table keyed like the source gets upserts, and loses the rows the source loses', async () => {
  await alice.query(`CREATE TABLE src2 (a int, b text, body text, PRIMARY KEY (a, b))`);
  await alice.query(`CREATE TABLE summaries (a int, b text, summary jsonb, PRIMARY KEY (a, b))`);
  await alice.query(`INSERT INTO src2 VALUES (1, 'x', 'one'), (2, 'y', 'two')`);
  await alice.query(`SELECT steadytext_pipeline_create('sum', 'src2', 'body', 'summaries.summary', 'generate', '{}')`);
  const rows = await claim();
  await write(rows, rows.map((r) => `sum of ${r.input}`));
  assert.deepEqual((await alice.query(`SELECT a, b, summary FROM summaries ORDER BY a`)).rows,
    [{ a: 1, b: 'x', summary: 'sum of one' }, { a: 2, b: 'y', summary: 'sum of two' }]);
  await alice.query(`DELETE FROM src2 WHERE a = 1`);
  assert.deepEqual((await alice.query(`SELECT a FROM summaries`)).rows, [{ a: 2 }]);
  await alice.query(`UPDATE src2 SET body = 'deux'`);
  const again = await claim();
  await write(again, again.map((r) => `sum of ${r.input}`));
  assert.equal((await one(alice, `SELECT summary FROM summaries WHERE a = 2`)).summary, 'sum of deux');
  await alice.query(`SELECT steadytext_pipeline_drop('sum')`);
});

test('pipelines survive an upgrade: the next version\'s scripts run again over them and they keep working', async () => {
  await alice.query(`CREATE TABLE kept (id int PRIMARY KEY, body text, emb real[])`);
  await alice.query(`INSERT INTO kept VALUES (1, 'a'), (2, 'bb')`);
  await alice.query(`SELECT steadytext_pipeline_create('kept', 'kept', 'body', 'emb')`);
  await drain();
  // every upgrade script ends by running the repeatable sources again (tables IF NOT EXISTS,
  // functions, policies, grants): this one is what the upgrade to the next version will run
  const { scriptText } = await import('../../src/db/schema/migrate.ts');
  const { currentVersion } = await import('../../src/db/schema/sqlBuild.ts');
  const [major, minor] = currentVersion().split('.');
  await db.pool.query(scriptText(`pg_steadytext--${major}.${Number(minor) - 1}.0--${currentVersion()}.sql`, 'public'));
  const s = await status(alice, 'kept');
  assert.deepEqual([Number(s.rows), Number(s.done)], [2, 2]);
  await alice.query(`UPDATE kept SET body = 'ccc' WHERE id = 1`);
  await drain();
  assert.deepEqual((await one(alice, `SELECT emb FROM kept WHERE id = 1`)).emb, [3, 1]);
  assert.equal(await sqlstate(wrk, `SELECT * FROM kept`), '42501', 'the worker role still gains nothing');
  await alice.query(`SELECT steadytext_pipeline_drop('kept')`);
});

test('use_cache: a result written is stored in the cache, and a row with the same input is answered from it', async () => {
  await alice.query(`CREATE TABLE cached (id int PRIMARY KEY, body text, emb real[])`);
  await alice.query(`INSERT INTO cached VALUES (1, 'same words')`);
  await alice.query(`SELECT steadytext_pipeline_create('cached', 'cached', 'body', 'emb', 'embed', '{}', 0, true)`);
  const first = await claim();
  assert.deepEqual(first.map((r) => [r.row_key, (r as Claimed & { cached: string | null }).cached]), [[[1], null]]);
  await write(first, ['[7,7]']);
  await alice.query(`INSERT INTO cached VALUES (2, 'same words'), (3, 'other words')`);
  const next = (await claim()) as (Claimed & { cached: string | null })[];
  assert.deepEqual(next.map((r) => [r.row_key, r.cached]), [[[2], '[7,7]'], [[3], null]]);
  await write(next, next.map((r) => r.cached ?? '[1,1]'));
  assert.deepEqual((await alice.query(`SELECT id, emb FROM cached ORDER BY id`)).rows.map((r) => r.emb), [[7, 7], [7, 7], [1, 1]]);
  await alice.query(`SELECT steadytext_pipeline_drop('cached')`);
});
