// Roles, row-level security and SECURITY DEFINER boundaries (docs/security.md).
// Login roles are cluster-wide: each run creates its own (unique names) and
// drops them at the end. A real worker (src/worker, scripted engine) connects
// as a steadytext_worker login role.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createTestDatabase, serverUrl, type TestDatabase } from '../helpers/db.ts';
import { startWorker, type Worker } from '../../src/worker/index.ts';
import { testSettings, waitFor } from '../worker/fixtures/queue.ts';
import { assertSqlError, enableHandoff } from './helpers.ts';

const suffix = randomBytes(4).toString('hex');
const ROLES = {
  a: `st_sec_a_${suffix}`,
  b: `st_sec_b_${suffix}`,
  admin: `st_sec_admin_${suffix}`,
  worker: `st_sec_worker_${suffix}`,
};
const PASSWORD = `pw-${suffix}`;

let db: TestDatabase;
const clients: pg.Client[] = [];
let worker: Worker | undefined;

function urlAs(role: string): string {
  const u = new URL(db.url);
  u.username = role;
  u.password = PASSWORD;
  return u.toString();
}

async function as(role: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: urlAs(role) });
  await c.connect();
  clients.push(c);
  return c;
}

async function one<T = any>(c: pg.ClientBase | pg.Pool, sql: string, params: unknown[] = []): Promise<T> {
  return (await c.query(sql, params)).rows[0] as T;
}

before(async () => {
  db = await createTestDatabase();
  await enableHandoff(db.pool, db.url);
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE ROLE ${ROLES.a} LOGIN PASSWORD '${PASSWORD}' IN ROLE steadytext_user`);
    await admin.query(`CREATE ROLE ${ROLES.b} LOGIN PASSWORD '${PASSWORD}' IN ROLE steadytext_user`);
    await admin.query(`CREATE ROLE ${ROLES.admin} LOGIN PASSWORD '${PASSWORD}' IN ROLE steadytext_admin`);
    await admin.query(`CREATE ROLE ${ROLES.worker} LOGIN PASSWORD '${PASSWORD}' IN ROLE steadytext_worker`);
  } finally {
    await admin.end();
  }
});

after(async () => {
  await worker?.stop();
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
  await db.drop();
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    for (const r of Object.values(ROLES)) await admin.query(`DROP ROLE IF EXISTS ${r}`);
  } finally {
    await admin.end();
  }
});

test('the install made the four group roles, NOLOGIN, and gave PUBLIC no function', async () => {
  const r = await db.pool.query(
    `SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN ('steadytext_user', 'steadytext_admin', 'steadytext_worker', 'steadytext_handoff') ORDER BY 1`);
  assert.deepEqual(r.rows, [
    { rolname: 'steadytext_admin', rolcanlogin: false },
    { rolname: 'steadytext_handoff', rolcanlogin: false },
    { rolname: 'steadytext_user', rolcanlogin: false },
    { rolname: 'steadytext_worker', rolcanlogin: false },
  ]);
  const fns = await db.pool.query(
    `SELECT p.proname, p.prosecdef, p.proconfig,
            has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec,
            has_function_privilege('steadytext_user', p.oid, 'EXECUTE') AS user_exec
     FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
       AND (p.proname LIKE 'steadytext\\_%' OR p.proname LIKE '\\_steadytext\\_%')`);
  assert.ok(fns.rows.length > 40);
  for (const f of fns.rows) {
    assert.equal(f.public_exec, false, `${f.proname}: no EXECUTE for PUBLIC`);
    assert.ok((f.proconfig ?? []).some((c: string) => c.startsWith('search_path=')), `${f.proname} pins search_path`);
  }
  const definers = fns.rows.filter((f) => f.prosecdef).map((f) => f.proname).sort();
  assert.deepEqual(definers, [
    '_steadytext_cache_fold', '_steadytext_cache_lookup', '_steadytext_cancel', '_steadytext_enqueue', '_steadytext_enqueue_batch',
    '_steadytext_handoff', '_steadytext_handoff_cancel', '_steadytext_handoff_insert', '_steadytext_handoff_status',
    '_steadytext_operator_guc',
    // pipelines (docs/pipelines.md): what the caller may do is checked inside; the worker's are the worker's only
    '_steadytext_pipeline_change', '_steadytext_pipeline_change_check', '_steadytext_pipeline_claim', '_steadytext_pipeline_failed',
    '_steadytext_pipeline_reclaim', '_steadytext_pipeline_refuse', '_steadytext_pipeline_register', '_steadytext_pipeline_release',
    '_steadytext_pipeline_report', '_steadytext_pipeline_write',
    '_steadytext_publish_model_ids', '_steadytext_retry', 'steadytext_cache_stats',
    'steadytext_cleanup_results',
  ]);
  const userCannot = fns.rows.filter((f) => !f.user_exec).map((f) => f.proname).sort();
  assert.deepEqual(userCannot, [
    '_steadytext_cache_fold', '_steadytext_cache_scope', '_steadytext_check_queue_size', '_steadytext_handoff_cancel', '_steadytext_handoff_insert',
    '_steadytext_handoff_status', '_steadytext_lock_request', '_steadytext_model_id',
    '_steadytext_pipeline_claim', '_steadytext_pipeline_held', '_steadytext_pipeline_install', '_steadytext_pipeline_reclaim', '_steadytext_pipeline_refuse',
    '_steadytext_pipeline_release', '_steadytext_pipeline_scan_claim', '_steadytext_pipeline_uninstall', '_steadytext_pipeline_write',
    '_steadytext_publish_model_ids',
    '_steadytext_queue_notify_completed', '_steadytext_queue_stamp', '_steadytext_queued', '_steadytext_quota_announced', '_steadytext_quota_inflight', '_steadytext_quota_key',
    '_steadytext_quota_reserve', '_steadytext_request_key', '_steadytext_scope_key',
    '_steadytext_scoped_cache_key', 'steadytext_cache_clear', 'steadytext_cache_evict', 'steadytext_cleanup_results', 'steadytext_dblink_connstr', 'steadytext_setup_handoff',
  ]);
  // every function pins exactly pg_catalog, pg_temp
  for (const f of fns.rows) {
    assert.ok((f.proconfig ?? []).includes('search_path=pg_catalog, pg_temp'), `${f.proname}: ${f.proconfig}`);
  }
});

test('a role reads, waits on, cancels and retries only its own requests', async () => {
  const a = await as(ROLES.a);
  const b = await as(ROLES.b);
  const idA = (await one(a, `SELECT steadytext_generate_async('secret of A', use_cache := false) AS id`)).id;
  const idB = (await one(b, `SELECT steadytext_generate_async('secret of B', use_cache := false) AS id`)).id;
  const [batchA] = (await one(a, `SELECT steadytext_embed_batch_async(ARRAY['a1', 'a2']) AS ids`)).ids;

  // A's own rows, owner_role = A
  const mine = await a.query(`SELECT request_id, owner_role FROM steadytext_queue ORDER BY created_at`);
  assert.deepEqual(mine.rows.map((r) => r.owner_role), [ROLES.a, ROLES.a, ROLES.a]);
  assert.ok(mine.rows.some((r) => r.request_id === batchA));
  // the spec's monitoring query, as written, shows A only its own
  const pending = await a.query(
    `SELECT request_id, status, EXTRACT(EPOCH FROM (NOW() - created_at)) AS waiting_seconds
     FROM steadytext_queue WHERE status IN ('pending', 'processing') ORDER BY priority DESC, created_at`);
  assert.equal(pending.rows.length, 3);
  assert.ok(!pending.rows.some((r) => r.request_id === idB));

  // B's request does not exist for A
  assert.equal((await a.query(`SELECT 1 FROM steadytext_queue WHERE request_id = $1`, [idB])).rows.length, 0);
  assert.equal((await one(a, `SELECT status FROM steadytext_check_async($1)`, [idB])).status, 'not_found');
  const batch = await a.query(`SELECT request_id, status FROM steadytext_check_async_batch($1::uuid[])`, [[idA, idB]]);
  assert.deepEqual(batch.rows.map((r) => r.status), ['pending', 'not_found']);
  await assertSqlError(a, `SELECT steadytext_get_async_result($1, 0)`, [idB], 'P0002', 'does not exist');
  await assertSqlError(a, `SELECT steadytext_embedding($1)`, [idB], 'P0002');
  assert.equal((await one(a, `SELECT steadytext_cancel_async($1) AS ok`, [idB])).ok, false);
  await db.pool.query(`UPDATE steadytext_queue SET status = 'failed', error = 'x' WHERE request_id = $1`, [idB]);
  assert.equal((await one(a, `SELECT steadytext_retry_failed($1) AS ok`, [idB])).ok, false);
  assert.equal((await one(db.pool, `SELECT status FROM steadytext_queue WHERE request_id = $1`, [idB])).status, 'failed');
  // monitoring through the functions is filtered the same way
  const stats = await a.query(`SELECT function_name, status, count::int FROM steadytext_queue_stats() ORDER BY 1, 2`);
  assert.deepEqual(stats.rows, [
    { function_name: 'embed', status: 'pending', count: 2 },
    { function_name: 'generate', status: 'pending', count: 1 },
  ]);

  // its own: cancel and retry work
  assert.equal((await one(a, `SELECT steadytext_cancel_async($1) AS ok`, [idA])).ok, true);
  await db.pool.query(`UPDATE steadytext_queue SET status = 'failed', error = 'x' WHERE request_id = $1`, [batchA]);
  assert.equal((await one(a, `SELECT steadytext_retry_failed($1) AS ok`, [batchA])).ok, true);
  assert.equal((await one(b, `SELECT steadytext_retry_failed($1) AS ok`, [idB])).ok, true);
});

test('a user role writes nothing directly and reads neither the cache nor the config', async () => {
  const a = await as(ROLES.a);
  const before = await one(db.pool, `SELECT count(*)::int AS n FROM steadytext_queue`);
  for (const sql of [
    `INSERT INTO steadytext_queue (function_name, parameters) VALUES ('generate', '{"prompt":"x"}')`,
    `UPDATE steadytext_queue SET status = 'completed', result = 'forged'`,
    `DELETE FROM steadytext_queue`,
    `SELECT * FROM steadytext_cache`,
    `INSERT INTO steadytext_cache (cache_key, function_name, model_id, parameters, result) VALUES ('k', 'generate', 'm', '{}', 'poison')`,
    `SELECT * FROM steadytext_config`,
    `SELECT steadytext_dblink_connstr()`,
    `SELECT steadytext_cache_clear()`,
    `SELECT steadytext_cache_evict()`,
    `UPDATE steadytext_workers SET status = 'dead'`,
  ]) {
    await assertSqlError(a, sql, [], '42501');
  }
  assert.deepEqual(await one(db.pool, `SELECT count(*)::int AS n FROM steadytext_queue`), before);
  // cache statistics are aggregates only, and allowed
  assert.ok(await one(a, `SELECT entries FROM steadytext_cache_stats()`));
});

test('the SECURITY DEFINER helpers refuse to act for another role or on another transaction\'s request', async () => {
  const a = await as(ROLES.a);
  const b = await as(ROLES.b);
  const idB = (await one(b, `SELECT steadytext_generate_async('B again', use_cache := false) AS id`)).id;
  await assertSqlError(a, `SELECT _steadytext_enqueue('x', 'generate', '{"prompt":"p"}', 0, $1)`, [ROLES.b], '42501', 'cannot act for role');
  await assertSqlError(a, `SELECT _steadytext_enqueue_batch('x', 'generate', '{}', ARRAY['p'], 0, $1)`, [ROLES.b], '42501');
  await assertSqlError(a, `SELECT _steadytext_cancel($1, $2)`, [idB, ROLES.b], '42501');
  await assertSqlError(a, `SELECT _steadytext_retry($1, $2)`, [idB, 'postgres'], '42501');
  await assertSqlError(a, `SELECT _steadytext_handoff($1, 1, now() + interval '1 second')`, [idB], '42501', 'not a pending request of this transaction');
  assert.equal((await one(db.pool, `SELECT status FROM steadytext_queue WHERE request_id = $1`, [idB])).status, 'pending');
  // a superuser session that SET ROLE's to A enqueues as A
  const su = await db.connect();
  await su.query(`SET ROLE ${ROLES.a}`);
  const id = (await one(su, `SELECT steadytext_generate_async('via SET ROLE') AS id`)).id;
  await su.query(`RESET ROLE`);
  assert.equal((await one(db.pool, `SELECT owner_role FROM steadytext_queue WHERE request_id = $1`, [id])).owner_role, ROLES.a);
  // A cannot point the hand-off somewhere else: its own SET of the GUC is ignored
  await a.query(`SET steadytext.dblink_connstr = 'host=/nonexistent user=postgres'`);
  await a.query('BEGIN');
  const idOwn = (await one(a, `SELECT steadytext_generate_async('handoff attempt', use_cache := false) AS id`)).id;
  const waiting = a.query(`SELECT steadytext_get_async_result($1, 5) AS r`, [idOwn]);
  const copy = await waitFor('the hand-off copy', async () =>
    (await db.pool.query(`SELECT request_id, owner_role FROM steadytext_queue WHERE handoff_of = $1`, [idOwn])).rows[0]);
  assert.equal(copy.owner_role, ROLES.a);
  await db.pool.query(`UPDATE steadytext_queue SET status = 'completed', result = 'ok' WHERE request_id = $1`, [copy.request_id]);
  assert.equal((await waiting).rows[0].r, 'ok');
  await a.query('COMMIT');
});

test('an admin sees and cancels every request', async () => {
  const b = await as(ROLES.b);
  const admin = await as(ROLES.admin);
  const idB = (await one(b, `SELECT steadytext_generate_async('B for the admin', use_cache := false) AS id`)).id;
  const all = await one(admin, `SELECT count(DISTINCT owner_role)::int AS owners, count(*)::int AS n FROM steadytext_queue`);
  assert.deepEqual(all, await one(db.pool, `SELECT count(DISTINCT owner_role)::int AS owners, count(*)::int AS n FROM steadytext_queue`));
  assert.ok(all.owners >= 2);
  assert.equal((await one(admin, `SELECT status FROM steadytext_check_async($1)`, [idB])).status, 'pending');
  assert.equal((await one(admin, `SELECT steadytext_cancel_async($1) AS ok`, [idB])).ok, true);
  assert.ok(await one(admin, `SELECT steadytext_dblink_connstr() AS c`));
  assert.ok((await admin.query(`SELECT * FROM steadytext_config`)).rows.length > 0);
});

test('a worker connecting as a steadytext_worker role runs user requests; the user reads its results', async () => {
  const a = await as(ROLES.a);
  const b = await as(ROLES.b);
  await db.pool.query(`UPDATE steadytext_queue SET status = 'cancelled' WHERE status IN ('pending', 'processing')`);
  const listener = await as(ROLES.b);
  const payloads: string[] = [];
  listener.on('notification', (n) => payloads.push(n.payload ?? ''));
  await listener.query('LISTEN steadytext_completed');

  worker = await startWorker(testSettings(urlAs(ROLES.worker), { heartbeatTimeout: '5' }));
  const id = (await one(a, `SELECT steadytext_generate_async('shared question') AS id`)).id;
  assert.equal((await one(a, `SELECT steadytext_get_async_result($1, 10) AS r`, [id])).r, 'echo:shared question');
  // enqueued and waited on in one statement: the row is uncommitted, so handed off
  const e = await one(a, `SELECT steadytext_get_async_result(steadytext_embed_async('vec'), 10) AS v`);
  assert.match(e.v, /^\[[-0-9.e,]+\]$/);
  // the worker's row, its model ids in the config, and the cache entry it wrote
  const w = await one(db.pool, `SELECT status FROM steadytext_workers WHERE worker_id = $1`, [worker.workerId]);
  assert.equal(w.status, 'running');
  assert.equal((await one(db.pool, `SELECT value #>> '{}' AS v FROM steadytext_config WHERE key = 'model.generation'`)).v, 'scripted-generation');
  await waitFor('cache entry', async () =>
    (await db.pool.query(`SELECT 1 FROM steadytext_cache WHERE parameters->>'prompt' = 'shared question'`)).rows.length > 0);
  // the cache is shared: B's identical request is answered from it, without the worker
  const idB = (await one(b, `SELECT steadytext_generate_async('shared question') AS id`)).id;
  assert.deepEqual(await one(b, `SELECT status, result FROM steadytext_check_async($1)`, [idB]), { status: 'completed', result: 'echo:shared question' });
  assert.equal((await one(b, `SELECT status FROM steadytext_check_async($1)`, [id])).status, 'not_found');
  // the synchronous functions as a user role (hand-off through dblink)
  assert.equal((await one(a, `SELECT steadytext_generate('sync as A', use_cache := false) AS r`)).r, 'echo:sync as A');
  assert.equal((await one(b, `SELECT count(*)::int AS n FROM steadytext_queue WHERE parameters->>'prompt' = 'sync as A'`)).n, 0);
  // NOTIFY payloads carry ids and status only, never content
  await waitFor('notifications', async () => payloads.length >= 2);
  for (const p of payloads) {
    assert.deepEqual(Object.keys(JSON.parse(p)).filter((k) => k !== 'batch_id').sort(), ['function', 'request_id', 'status']);
    assert.ok(!p.includes('shared question') && !p.includes('echo'));
  }
  // the worker role does no DDL and deletes no requests
  const wc = await as(ROLES.worker);
  for (const sql of [`DROP TABLE steadytext_cache`, `ALTER TABLE steadytext_queue DISABLE ROW LEVEL SECURITY`,
                     `DELETE FROM steadytext_queue`, `CREATE TABLE public.x (i int)`, `TRUNCATE steadytext_cache`]) {
    await assertSqlError(wc, sql, [], '42501');
  }
  await worker.stop();
  worker = undefined;
});
