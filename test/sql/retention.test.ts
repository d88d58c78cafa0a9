// Result retention: steadytext_cleanup_results() deletes old finished
// requests in bounded batches, never a pending or processing one, never part
// of a batch still in flight; the worker applies it on a timer when asked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { cleanupResults } from '../../src/db/queue/cleanupResults.ts';
import { resolveSettings, SettingsError } from '../../src/worker/settings.ts';
import { createTestDatabase, serverUrl } from '../helpers/db.ts';
import { startTestWorker, waitFor } from '../worker/fixtures/queue.ts';
import { assertSqlError } from './helpers.ts';

const DAY_MS = 86_400_000;

/** Rows inserted as they are (the bookkeeping triggers off), `completed_at` as given. */
async function insertRows(c: pg.ClientBase, sql: string): Promise<void> {
  await c.query(`SET session_replication_role = replica`);
  try {
    await c.query(sql);
  } finally {
    await c.query(`RESET session_replication_role`);
  }
}

async function countsByKind(db: pg.Pool): Promise<Record<string, number>> {
  const r = await db.query<{ kind: string; n: number }>(
    `SELECT CASE WHEN status IN ('pending', 'processing') THEN status
                 WHEN completed_at < now() - interval '7 days' THEN 'old ' || status
                 ELSE 'new ' || status END AS kind, count(*)::int AS n
     FROM steadytext_queue GROUP BY 1 ORDER BY 1`,
  );
  return Object.fromEntries(r.rows.map((x) => [x.kind, x.n]));
}

test('at 1M rows: exactly the old finished rows go, in bounded batches; pending, processing, new rows and unfinished batches stay', { timeout: 900_000 }, async () => {
  const db = await createTestDatabase();
  const c = await db.connect();
  try {
    // 1,000,000 rows: 900,000 finished 8+ days ago, 50,000 finished an hour
    // ago, 25,000 pending and 25,000 processing (created 30 days ago).
    await insertRows(c, `
      INSERT INTO steadytext_queue (function_name, parameters, status, result, error, created_at, started_at, completed_at, failed_at)
      SELECT 'generate', jsonb_build_object('prompt', 'p' || i), s.status,
             CASE WHEN s.status = 'completed' THEN 'r' || i END,
             CASE WHEN s.status IN ('failed', 'cancelled') THEN 'e' END,
             now() - interval '30 days',
             CASE WHEN s.status <> 'pending' THEN now() - interval '30 days' END,
             s.completed_at,
             CASE WHEN s.status = 'failed' THEN s.completed_at END
      FROM generate_series(1, 1000000) AS i
      CROSS JOIN LATERAL (SELECT
          CASE WHEN i <= 950000 THEN (ARRAY['completed', 'failed', 'cancelled'])[1 + i % 3]
               WHEN i <= 975000 THEN 'pending' ELSE 'processing' END AS status,
          CASE WHEN i <= 900000 THEN now() - interval '8 days' - i * interval '1 second'
               WHEN i <= 950000 THEN now() - interval '1 hour' END AS completed_at) AS s`);
    // Two old batches: one finished, one with a row still pending.
    await insertRows(c, `
      INSERT INTO steadytext_queue (function_name, parameters, status, result, created_at, completed_at, batch_id, batch_index)
      SELECT 'embed', '{}', CASE WHEN b = 2 AND i = 3 THEN 'pending' ELSE 'completed' END, 'r',
             now() - interval '30 days', CASE WHEN b = 2 AND i = 3 THEN NULL ELSE now() - interval '20 days' END,
             ('00000000-0000-0000-0000-00000000000' || b)::uuid, i
      FROM generate_series(1, 2) AS b, generate_series(0, 3) AS i`);
    await c.query('ANALYZE steadytext_queue');
    const before = await countsByKind(db.pool);
    assert.equal(Object.values(before).reduce((a, b) => a + b, 0), 1_000_008);
    assert.equal(before['old completed'] + before['old failed'] + before['old cancelled'], 900_007);

    // One batch holds only row locks: no lock on the table beyond ROW EXCLUSIVE.
    await c.query('BEGIN');
    const one = await c.query(`SELECT steadytext_cleanup_results(interval '7 days', batch_size := 1000) AS n`);
    assert.equal(Number(one.rows[0].n), 1000);
    const locks = await c.query<{ mode: string }>(
      `SELECT DISTINCT mode FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'steadytext_queue'::regclass ORDER BY 1`,
    );
    assert.deepEqual(locks.rows.map((l) => l.mode).filter((m) => !['RowExclusiveLock', 'RowShareLock', 'AccessShareLock'].includes(m)), []);
    await c.query('ROLLBACK');

    const r = await cleanupResults(db.pool, { olderThanMs: 7 * DAY_MS, batchSize: 50_000 });
    assert.equal(r.deleted, 900_004, 'the 900,000 old rows and the finished old batch');
    assert.ok(r.batches.every((n) => n <= 50_000), `batches: ${r.batches.join(', ')}`);
    assert.deepEqual(r.batches, [...Array(18).fill(50_000), 4]);

    const after = await countsByKind(db.pool);
    assert.deepEqual(after, {
      'new cancelled': before['new cancelled'],
      'new completed': before['new completed'],
      'new failed': before['new failed'],
      'old completed': 3, // the batch with a pending row keeps every row
      pending: 25_001,
      processing: 25_000,
    });
    const kept = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE batch_id = '00000000-0000-0000-0000-000000000002'`);
    assert.equal(kept.rows[0].n, 4);
    assert.equal((await cleanupResults(db.pool, { olderThanMs: 7 * DAY_MS })).deleted, 0, 'a second run finds nothing');
  } finally {
    await c.end();
    await db.drop();
  }
});

test('statuses choose what goes; age zero takes every finished row and still no unfinished one', async () => {
  const db = await createTestDatabase();
  const c = await db.connect();
  try {
    await insertRows(c, `
      INSERT INTO steadytext_queue (function_name, parameters, status, completed_at)
      SELECT 'generate', '{}', s, CASE WHEN s IN ('pending', 'processing') THEN NULL ELSE now() - interval '1 day' END
      FROM unnest(ARRAY['pending', 'processing', 'completed', 'failed', 'cancelled']) AS s, generate_series(1, 3)`);
    const n = (sql: string) => db.pool.query(sql).then((x) => Number(x.rows[0].n));
    assert.equal(await n(`SELECT steadytext_cleanup_results(interval '2 days') AS n`), 0, 'nothing older than 2 days');
    assert.equal(await n(`SELECT steadytext_cleanup_results(interval '1 hour', ARRAY['failed']) AS n`), 3);
    assert.equal(await n(`SELECT steadytext_cleanup_results(interval '0') AS n`), 6);
    assert.deepEqual(await countsByKind(db.pool), { pending: 3, processing: 3 });
  } finally {
    await c.end();
    await db.drop();
  }
});

test('bad arguments: a clear error naming the argument, and nothing deleted', async () => {
  const db = await createTestDatabase();
  const c = await db.connect();
  try {
    await insertRows(c, `INSERT INTO steadytext_queue (function_name, parameters, status, completed_at)
                         SELECT 'generate', '{}', 'completed', now() - interval '30 days' FROM generate_series(1, 5)`);
    const f = 'steadytext_cleanup_results';
    await assertSqlError(db.pool, `SELECT ${f}(NULL)`, [], '22004', f, 'older_than');
    await assertSqlError(db.pool, `SELECT ${f}(interval '-1 day')`, [], '22023', 'older_than', 'negative');
    await assertSqlError(db.pool, `SELECT ${f}(statuses := NULL)`, [], '22004', 'statuses');
    await assertSqlError(db.pool, `SELECT ${f}(statuses := ARRAY[]::text[])`, [], '22023', 'statuses');
    await assertSqlError(db.pool, `SELECT ${f}(statuses := ARRAY['completed', NULL])`, [], '22004', 'statuses');
    await assertSqlError(db.pool, `SELECT ${f}(statuses := ARRAY['completed', 'pending'])`, [], '22023', 'statuses', "'pending'");
    await assertSqlError(db.pool, `SELECT ${f}(statuses := ARRAY['processing'])`, [], '22023', "'processing'");
    await assertSqlError(db.pool, `SELECT ${f}(batch_size := NULL)`, [], '22004', 'batch_size');
    await assertSqlError(db.pool, `SELECT ${f}(batch_size := 0)`, [], '22023', 'batch_size');
    await assertSqlError(db.pool, `SELECT ${f}(batch_size := 100001)`, [], '54000', 'batch_size', '100000');
    assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue`)).rows[0].n, 5);
  } finally {
    await c.end();
    await db.drop();
  }
});

test('admin and worker roles may run it; a tenant (steadytext_user) may not', async () => {
  const db = await createTestDatabase();
  const suffix = randomBytes(4).toString('hex');
  const roles = { user: `st_ret_user_${suffix}`, worker: `st_ret_worker_${suffix}`, admin: `st_ret_admin_${suffix}` };
  const c = await db.connect();
  try {
    await c.query(`CREATE ROLE ${roles.user} IN ROLE steadytext_user`);
    await c.query(`CREATE ROLE ${roles.worker} IN ROLE steadytext_worker`);
    await c.query(`CREATE ROLE ${roles.admin} IN ROLE steadytext_admin`);
    await insertRows(c, `INSERT INTO steadytext_queue (function_name, parameters, status, completed_at, owner_role)
                         SELECT 'generate', '{}', 'completed', now() - interval '30 days', '${roles.user}' FROM generate_series(1, 4)`);
    await c.query(`SET ROLE ${roles.user}`);
    await assertSqlError(c, `SELECT steadytext_cleanup_results(interval '1 day')`, [], '42501', 'steadytext_cleanup_results');
    await c.query(`RESET ROLE; SET ROLE ${roles.worker}`);
    assert.equal(Number((await c.query(`SELECT steadytext_cleanup_results(interval '1 day', batch_size := 2) AS n`)).rows[0].n), 2);
    await c.query(`RESET ROLE; SET ROLE ${roles.admin}`);
    assert.equal(Number((await c.query(`SELECT steadytext_cleanup_results(interval '1 day') AS n`)).rows[0].n), 2);
    await c.query(`RESET ROLE`);
  } finally {
    await c.end();
    await db.drop();
    const a = new pg.Client({ connectionString: serverUrl() });
    await a.connect();
    for (const r of Object.values(roles)) await a.query(`DROP ROLE IF EXISTS ${r}`);
    await a.end();
  }
});

test('the worker setting: off by default; when set, old finished requests go on the timer and the rest stay', async () => {
  assert.equal(resolveSettings({ databaseUrl: 'postgres://x/y' }, {}).resultRetentionMs, undefined, 'off by default');
  assert.equal(resolveSettings({ databaseUrl: 'postgres://x/y' }, { STEADYTEXT_WORKER_RESULT_RETENTION: '7 days' }).resultRetentionMs, 7 * DAY_MS);
  assert.equal(resolveSettings({ databaseUrl: 'postgres://x/y', resultRetention: 'off' }, { STEADYTEXT_WORKER_RESULT_RETENTION: '7d' }).resultRetentionMs, undefined);
  assert.throws(() => resolveSettings({ databaseUrl: 'postgres://x/y' }, { STEADYTEXT_WORKER_RESULT_RETENTION: 'a week' }), SettingsError);

  const db = await createTestDatabase();
  const c = await db.connect();
  try {
    await insertRows(c, `
      INSERT INTO steadytext_queue (function_name, parameters, status, completed_at, run_at)
      SELECT 'generate', '{}', s, CASE WHEN s = 'pending' THEN NULL WHEN i <= 2 THEN now() - interval '3 days' ELSE now() END,
             now() + interval '1 day'  -- pending rows not yet due: the worker leaves them be
      FROM unnest(ARRAY['pending', 'completed', 'failed', 'cancelled']) AS s, generate_series(1, 4) AS i`);
    const w = await startTestWorker(db.url, { resultRetention: '1d' }, { resultCleanupIntervalMs: 50, resultCleanupBatchSize: 2 });
    try {
      await waitFor('the old finished requests to be deleted', async () =>
        (await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE completed_at < now() - interval '1 day'`)).rows[0].n === 0,
      30_000);
      assert.deepEqual(await countsByKind(db.pool), { 'new cancelled': 2, 'new completed': 2, 'new failed': 2, pending: 4 });
    } finally {
      await w.stop();
    }
  } finally {
    await c.end();
    await db.drop();
  }
});
