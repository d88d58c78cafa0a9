// `steadytext migrate` sets up the hand-off's login where it may create
// roles (and the default connection, over the server's unix socket, works);
// where it may not (a database owner installing for itself), it installs all
// the same and leaves the login to an operator.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { urlFor } from '../helpers/db.ts';
import { runCli } from '../cli/fixtures/cli.ts';
import { migrate } from '../../src/db/schema/migrate.ts';
import { makeLogins, one, sqlstate, superuser, type Logins } from './fixtures.ts';

const suffix = randomBytes(4).toString('hex');
const DB_SU = `st_mig_su_${suffix}`;
const DB_OWNER = `st_mig_owner_${suffix}`;
let logins: Logins;

before(async () => {
  logins = await makeLogins('st_mig', { owner: 'NOSUPERUSER NOCREATEROLE', tenant: 'IN ROLE steadytext_user' });
  await superuser(async (c) => {
    await c.query(`CREATE DATABASE ${DB_SU} TEMPLATE template1`);
    await c.query(`CREATE DATABASE ${DB_OWNER} OWNER ${logins.names.owner} TEMPLATE template1`);
  });
  for (const db of [DB_SU, DB_OWNER]) {
    await superuser((c) => c.query('CREATE EXTENSION dblink'), urlFor(db));
  }
});

after(async () => {
  await superuser(async (c) => {
    for (const db of [DB_SU, DB_OWNER]) await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  });
  await logins.drop();
});

test('steadytext migrate by a superuser: the hand-off login is made, dblink leaves PUBLIC, and the default connection works', { timeout: 120_000 }, async () => {
  const url = urlFor(DB_SU);
  const r = await runCli(['migrate', '--json', '--database-url', url]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.match(out.handoffLogin, /^steadytext_handoff_\d+$/);
  await superuser(async (c) => {
    const role = await one(c, `SELECT rolsuper, rolconnlimit FROM pg_roles WHERE rolname = $1`, [out.handoffLogin]);
    assert.deepEqual(role, { rolsuper: false, rolconnlimit: 16 });
    assert.equal((await one(c, `SELECT count(*)::int AS n FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid
      JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'dblink'
      WHERE has_function_privilege('public', p.oid, 'EXECUTE')`)).n, 0);
    // no dblink_connstr stored: the default (this database over the unix socket) is used
    assert.equal((await c.query(`SELECT 1 FROM steadytext_config WHERE key = 'dblink_connstr'`)).rows.length, 0);
    assert.match((await one(c, `SELECT steadytext_dblink_connstr() AS s`)).s, new RegExp(`user='${out.handoffLogin}'`));
  }, url);
  // a second run changes nothing and keeps the password
  const pw = await superuser(async (c) => (await one(c, `SELECT value FROM steadytext_config WHERE key = 'handoff_password'`)).value, url);
  const again = await runCli(['migrate', '--json', '--database-url', url]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).handoffLogin, out.handoffLogin);
  assert.equal(await superuser(async (c) => (await one(c, `SELECT value FROM steadytext_config WHERE key = 'handoff_password'`)).value, url), pw);

  // a tenant's enqueue-and-wait in one transaction goes through the hand-off
  const tenant = await logins.as('tenant', url);
  await tenant.query('BEGIN');
  const id = (await one(tenant, `SELECT steadytext_generate_async('via the socket', use_cache := false) AS id`)).id;
  const waiting = tenant.query(`SELECT steadytext_get_async_result($1, 30) AS r`, [id]);
  await superuser(async (c) => {
    for (let i = 0; i < 600; i++) {
      const u = await c.query(`UPDATE steadytext_queue SET status = 'completed', result = 'ok' WHERE handoff_of = $1 AND status = 'pending'`, [id]);
      if (u.rowCount) return;
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error('no hand-off copy appeared');
  }, url);
  assert.equal((await waiting).rows[0].r, 'ok');
  await tenant.query('COMMIT');
});

test('steadytext migrate by a database owner who may not create roles installs all the same and leaves the hand-off login to an operator', async () => {
  const url = urlFor(DB_OWNER);
  const r = await runCli(['migrate', '--database-url', logins.urlAs('owner', url)]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /hand-off login was not set up.*steadytext_setup_handoff\(\)/);
  const tenant = await logins.as('tenant', url);
  // limits still resolve (pg_file_settings is unreadable to this owner: only ALTER DATABASE counts)
  await tenant.query(`SET steadytext.max_prompt_bytes = 5`);
  assert.equal(Number((await one(tenant, `SELECT value FROM steadytext_limits() WHERE name = 'max_prompt_bytes'`)).value), 5);
  assert.equal(await sqlstate(tenant, `SELECT steadytext_generate_async('too long')`), '54000');
  // without a login, the hand-off says what is missing, writing nothing
  await tenant.query('BEGIN');
  const e = await tenant.query(`SELECT steadytext_get_async_result(steadytext_generate_async('x', use_cache := false), 2)`).then(() => null, (err) => err);
  assert.equal(e?.code, '55000');
  assert.match(e.message, /hand-off login/);
  await tenant.query('ROLLBACK');
});

test('upgrading a 1.0.0 install (as `steadytext up` of 1.0.0 left it) drops the superuser\'s stored connection string; workers lose the config', async () => {
  const db = `st_mig_up_${suffix}`;
  await superuser((c) => c.query(`CREATE DATABASE ${db} TEMPLATE template1`));
  try {
    const url = urlFor(db);
    await superuser(async (c) => {
      await c.query('CREATE EXTENSION dblink');
      await migrate(c, { target: '1.0.0' });
      const u = new URL(url);
      await c.query(`INSERT INTO steadytext_config (key, value) VALUES ('dblink_connstr', to_jsonb($1::text))`,
        [`host=${u.hostname} port=${u.port} dbname=${db} user=${decodeURIComponent(u.username)} password=${decodeURIComponent(u.password)}`]);
      assert.ok(await one(c, `SELECT has_table_privilege('steadytext_worker', 'steadytext_config', 'SELECT') AS ok`).then((r) => r.ok));
    }, url);
    const r = await runCli(['migrate', '--json', '--database-url', url]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).applied, ['pg_steadytext--1.0.0--1.1.0.sql', 'pg_steadytext--1.1.0--1.2.0.sql', 'pg_steadytext--1.2.0--1.3.0.sql', 'pg_steadytext--1.3.0--1.4.0.sql', 'pg_steadytext--1.4.0--1.5.0.sql', 'pg_steadytext--1.5.0--1.6.0.sql', 'pg_steadytext--1.6.0--1.7.0.sql', 'pg_steadytext--1.7.0--1.8.0.sql']);
    await superuser(async (c) => {
      const keys = (await c.query(`SELECT key FROM steadytext_config ORDER BY key`)).rows.map((x) => x.key);
      assert.deepEqual(keys, ['handoff_password', 'handoff_user']);
      const priv = await one(c, `SELECT has_table_privilege('steadytext_worker', 'steadytext_config', 'SELECT') AS s,
                                        has_table_privilege('steadytext_worker', 'steadytext_config', 'UPDATE') AS u`);
      assert.deepEqual(priv, { s: false, u: false });
    }, url);
  } finally {
    await superuser((c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`));
  }
});
