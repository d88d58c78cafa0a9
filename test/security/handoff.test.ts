// The request-response hand-off (dblink) and the shared config, attacked from
// a worker login, a tenant, a stray member of steadytext_handoff, and with
// many waiting sessions at once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { enableHandoff } from '../sql/helpers.ts';
import { waitFor } from '../worker/fixtures/queue.ts';
import { makeLogins, one, sqlstate, type Logins } from './fixtures.ts';

let db: TestDatabase;
let logins: Logins;

before(async () => {
  db = await createTestDatabase();
  await enableHandoff(db.pool, db.url);
  logins = await makeLogins('st_ho', {
    tenant: 'IN ROLE steadytext_user',
    other: 'IN ROLE steadytext_user',
    worker: 'IN ROLE steadytext_worker',
    stray: 'IN ROLE steadytext_handoff',
  });
});

after(async () => {
  await db.drop();
  await logins.drop();
});

async function handoffLogin(): Promise<{ user: string; password: string }> {
  const r = await one(db.pool,
    `SELECT (SELECT value #>> '{}' FROM steadytext_config WHERE key = 'handoff_user') AS user,
            (SELECT value #>> '{}' FROM steadytext_config WHERE key = 'handoff_password') AS password`);
  return r;
}

/** The stand-in worker: completes every pending hand-off copy until stop(). */
function completer(): { stop(): Promise<void>; completed: () => number } {
  let running = true;
  let n = 0;
  const done = (async () => {
    while (running) {
      const r = await db.pool.query(
        `UPDATE steadytext_queue SET status = 'completed', result = 'done:' || (parameters->>'prompt')
         WHERE handoff_of IS NOT NULL AND status = 'pending'`);
      n += r.rowCount ?? 0;
      await new Promise((res) => setTimeout(res, 20));
    }
  })();
  return { async stop() { running = false; await done; }, completed: () => n };
}

test('the hand-off login: no superuser, a connection limit, a member of steadytext_handoff only; its password readable by admins only', async () => {
  const { user } = await handoffLogin();
  const r = await one(db.pool,
    `SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolconnlimit, rolcanlogin,
            ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid)::text[] AS member_of
     FROM pg_roles r WHERE rolname = $1`, [user]);
  assert.deepEqual(r, { rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolbypassrls: false,
                        rolconnlimit: 16, rolcanlogin: true, member_of: ['steadytext_handoff'] });
  const tenant = await logins.as('tenant', db.url);
  const worker = await logins.as('worker', db.url);
  for (const c of [tenant, worker]) {
    assert.equal(await sqlstate(c, `SELECT * FROM steadytext_config`), '42501');
    assert.equal(await sqlstate(c, `SELECT steadytext_dblink_connstr()`), '42501');
    assert.equal(await sqlstate(c, `SELECT steadytext_setup_handoff()`), '42501');
    assert.equal(await sqlstate(c, `UPDATE steadytext_config SET value = '"host=/tmp options=-csearch_path=evil"' WHERE key = 'dblink_connstr'`), '42501');
    assert.equal(await sqlstate(c, `INSERT INTO steadytext_config (key, value) VALUES ('handoff_user', '"postgres"')`), '42501');
  }
});

test('a worker publishes its model ids and nothing else', async () => {
  const worker = await logins.as('worker', db.url);
  await worker.query(`SELECT _steadytext_publish_model_ids('{"generation": "gen-x", "embedding": "emb-x"}')`);
  assert.equal((await one(db.pool, `SELECT value #>> '{}' AS v FROM steadytext_config WHERE key = 'model.generation'`)).v, 'gen-x');
  const before = (await db.pool.query(`SELECT key, value FROM steadytext_config ORDER BY key`)).rows;
  for (const ids of [{ dblink_connstr: 'host=evil' }, { handoff_user: 'postgres' }, { generation: 42 }, { generation: '' }, { 'generation\' OR true': 'x' }]) {
    assert.equal(await sqlstate(worker, `SELECT _steadytext_publish_model_ids($1::jsonb)`, [JSON.stringify(ids)]), '22023', JSON.stringify(ids));
  }
  assert.deepEqual((await db.pool.query(`SELECT key, value FROM steadytext_config ORDER BY key`)).rows, before);
  // the tenant may not publish at all
  const tenant = await logins.as('tenant', db.url);
  assert.equal(await sqlstate(tenant, `SELECT _steadytext_publish_model_ids('{"generation": "x"}')`), '42501');
});

test('dblink is not executable by PUBLIC once the hand-off is set up; a tenant cannot use it', async () => {
  const fns = await db.pool.query(
    `SELECT p.oid::regprocedure::text AS sig, has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec
     FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'dblink'
     JOIN pg_proc p ON p.oid = d.objid WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'`);
  assert.ok(fns.rows.length > 10);
  assert.deepEqual(fns.rows.filter((f) => f.public_exec).map((f) => f.sig), []);
  const tenant = await logins.as('tenant', db.url);
  assert.equal(await sqlstate(tenant, `SELECT dblink_connect_u('x', 'host=127.0.0.1 port=1')`), '42501');
  assert.equal(await sqlstate(tenant, `SELECT * FROM dblink('host=127.0.0.1 port=1', 'SELECT 1') AS t(i int)`), '42501');
});

test('the hand-off connects as its login, which can do nothing but the hand-off; another steadytext_handoff member is refused', async () => {
  const { user, password } = await handoffLogin();
  const tenant = await logins.as('tenant', db.url);
  await tenant.query('BEGIN');
  const id = (await one(tenant, `SELECT steadytext_generate_async('as whom?', use_cache := false) AS id`)).id;
  const waiting = tenant.query(`SELECT steadytext_get_async_result($1, 20) AS r`, [id]);
  const copy = await waitFor('the hand-off copy', async () =>
    (await db.pool.query(`SELECT request_id FROM steadytext_queue WHERE handoff_of = $1`, [id])).rows[0]);
  const backends = await db.pool.query(
    `SELECT usename, (SELECT rolsuper FROM pg_roles WHERE rolname = usename) AS super
     FROM pg_stat_activity WHERE datname = $1 AND usename = $2`, [db.name, user]);
  assert.deepEqual(backends.rows, [{ usename: user, super: false }]);
  await db.pool.query(`UPDATE steadytext_queue SET status = 'completed', result = 'ok' WHERE request_id = $1`, [copy.request_id]);
  assert.equal((await waiting).rows[0].r, 'ok');
  await tenant.query('COMMIT');

  // logged in as the hand-off login itself (the password leaked, say)
  const u = new URL(db.url);
  u.username = user;
  u.password = password;
  const h = new pg.Client({ connectionString: u.toString() });
  await h.connect();
  try {
    for (const sql of [`SELECT * FROM steadytext_queue`, `SELECT * FROM steadytext_config`,
                       `SELECT steadytext_generate_async('x')`, `SELECT * FROM steadytext_check_async(gen_random_uuid())`,
                       `UPDATE steadytext_queue SET result = 'forged'`, `SELECT steadytext_cancel_async(gen_random_uuid())`]) {
      assert.equal(await sqlstate(h, sql), '42501', sql);
    }
    // the remote side answers only about hand-off copies
    assert.equal((await h.query(`SELECT * FROM _steadytext_handoff_status($1)`, [id])).rows.length, 0);
    assert.equal((await one(h, `SELECT _steadytext_handoff_cancel($1, 'x') AS ok`, [id])).ok, false);
  } finally {
    await h.end();
  }
  // another member of steadytext_handoff (another database's hand-off login, say) may not insert here
  const stray = await logins.as('stray', db.url);
  assert.equal(await sqlstate(stray,
    `SELECT _steadytext_handoff_insert(gen_random_uuid(), 'generate', '{"prompt":"p","max_tokens":5,"use_cache":false,"seed":1}', 0, $1, pg_backend_pid())`,
    [logins.names.other]), '42501');
  assert.equal((await one(db.pool, `SELECT count(*)::int AS n FROM steadytext_queue WHERE owner_role = $1`, [logins.names.other])).n, 0);
});

test('a connection string naming a superuser is refused (42501), leaving nothing behind', async () => {
  const prev = (await one(db.pool, `SELECT value FROM steadytext_config WHERE key = 'dblink_connstr'`)).value;
  const u = new URL(db.url);
  await db.pool.query(`UPDATE steadytext_config SET value = to_jsonb($1::text) WHERE key = 'dblink_connstr'`,
    [`host=${u.hostname} port=${u.port} dbname=${db.name} user=${decodeURIComponent(u.username)} password=${decodeURIComponent(u.password)}`]);
  try {
    const tenant = await logins.as('tenant', db.url);
    await tenant.query('BEGIN');
    const id = (await one(tenant, `SELECT steadytext_generate_async('as superuser?', use_cache := false) AS id`)).id;
    const e = await tenant.query(`SELECT steadytext_get_async_result($1, 5)`, [id]).then(() => null, (err) => err);
    assert.equal(e?.code, '42501');
    assert.match(e.message, /superuser/);
    await tenant.query('ROLLBACK');
    assert.equal((await one(db.pool, `SELECT count(*)::int AS n FROM steadytext_queue WHERE handoff_of = $1`, [id])).n, 0);
  } finally {
    await db.pool.query(`UPDATE steadytext_config SET value = $1 WHERE key = 'dblink_connstr'`, [JSON.stringify(prev)]);
  }
});

test('the operator\'s GUC steadytext.dblink_connstr (ALTER DATABASE) is read and wins; a tenant\'s own SET of it is not', async () => {
  const u = new URL(db.url);
  const good = `host=${u.hostname} port=${u.port} dbname=${db.name}`;
  const handoffOnce = async (c: pg.Client, prompt: string) => {
    await c.query('BEGIN');
    const id = (await one(c, `SELECT steadytext_generate_async($1, use_cache := false) AS id`, [prompt])).id;
    const r = await c.query(`SELECT steadytext_get_async_result($1, 20) AS r`, [id]).then((x) => x.rows[0].r, (err) => err);
    await c.query('ROLLBACK');
    return r;
  };
  const stop = completer();
  try {
    // the operator points it nowhere: the hand-off fails to connect, whatever the tenant SETs
    await db.pool.query(`ALTER DATABASE ${db.name} SET steadytext.dblink_connstr = 'host=/nonexistent-steadytext port=1 dbname=x'`);
    const t1 = await logins.as('tenant', db.url);
    await t1.query(`SET steadytext.dblink_connstr = '${good}'`);
    const e = await handoffOnce(t1, 'nowhere');
    assert.equal(e.code, '08001', String(e));
    // the config says nowhere, the operator's GUC says here: the GUC wins and works
    await db.pool.query(`UPDATE steadytext_config SET value = '"host=/nonexistent-steadytext port=1"' WHERE key = 'dblink_connstr'`);
    await db.pool.query(`ALTER DATABASE ${db.name} SET steadytext.dblink_connstr = '${good}'`);
    const t2 = await logins.as('tenant', db.url);
    assert.equal(await handoffOnce(t2, 'here'), 'done:here');
  } finally {
    await stop.stop();
    await db.pool.query(`ALTER DATABASE ${db.name} RESET steadytext.dblink_connstr`);
    await db.pool.query(`UPDATE steadytext_config SET value = to_jsonb($1::text) WHERE key = 'dblink_connstr'`, [good]);
  }
});

test('100 sessions waiting through the hand-off at once take at most its connection limit; other logins still get in', { timeout: 180_000 }, async () => {
  const LIMIT = 4;
  await db.pool.query(`SELECT steadytext_setup_handoff($1)`, [LIMIT]);
  const { user } = await handoffLogin();
  const sessions: pg.Client[] = [];
  const stop = completer();
  try {
    for (let i = 0; i < 100; i++) {
      const c = new pg.Client({ connectionString: logins.urlAs('tenant', db.url) });
      c.on('error', () => {});
      await c.connect();
      sessions.push(c);
    }
    // connections of the hand-off login from earlier tests (made under the default limit,
    // which lowering it does not close) must be gone before the peak means anything
    await waitFor('no hand-off connection left from earlier tests', async () =>
      (await one(db.pool, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1`, [user])).n === 0, 30_000);
    let maxHandoff = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const n = (await one(db.pool, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1`, [user])).n;
        maxHandoff = Math.max(maxHandoff, n);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const results = sessions.map(async (c, i) => {
      await c.query('BEGIN');
      const r = await c.query(
        `SELECT steadytext_get_async_result(steadytext_generate_async($1, use_cache := false), 120) AS r`, [`wait ${i}`]);
      await c.query('COMMIT');
      return r.rows[0].r as string;
    });
    // while they wait: a normal login of another role connects and works
    await waitFor('hand-offs under way', async () => stop.completed() > 0, 60_000);
    const other = new pg.Client({ connectionString: logins.urlAs('other', db.url) });
    await other.connect();
    assert.equal((await other.query(`SELECT 1 AS one`)).rows[0].one, 1);
    await other.end();
    const all = await Promise.all(results);
    sampling = false;
    await sampler;
    assert.deepEqual(all, sessions.map((_, i) => `done:wait ${i}`));
    assert.ok(maxHandoff <= LIMIT, `hand-off connections peaked at ${maxHandoff}`);
    assert.ok(maxHandoff >= 1);
  } finally {
    await stop.stop();
    await Promise.all(sessions.map((c) => c.end().catch(() => {})));
    await db.pool.query(`SELECT steadytext_setup_handoff()`);
  }
});
