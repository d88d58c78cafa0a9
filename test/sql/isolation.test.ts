// Isolation (schema 1.4.0): nothing one session does (an open transaction, a
// savepoint, a lock it holds, a quota it races) may stall or fail another
// role's work or a worker. Every test here failed on 1.3.0.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestWorker, waitFor } from '../worker/fixtures/queue.ts';
import type { Worker } from '../../src/worker/worker.ts';
import { makeLogins, one, type Logins } from '../security/fixtures.ts';
import { assertSqlError, enableHandoff } from './helpers.ts';

let db: TestDatabase;
let worker: Worker;
let logins: Logins;

before(async () => {
  db = await createTestDatabase();
  await enableHandoff(db.pool, db.url);
  // A failure must show fast: 1.3.0 waited out the whole timeout instead of answering.
  await db.pool.query(`ALTER DATABASE ${db.name} SET steadytext.sync_timeout_seconds = 8`);
  logins = await makeLogins('st_iso', {
    alice: 'IN ROLE steadytext_user',
    bob: 'IN ROLE steadytext_user',
    wrk: 'IN ROLE steadytext_worker',
  });
  worker = await startTestWorker(db.url, { concurrency: '4' });
});
after(async () => {
  await worker?.stop();
  await logins?.drop();
  await db.drop();
});

/** Cancels every live request the way a user does (the worker is told, and frees its slot). */
const cancelLive = async () => {
  await db.pool.query(`SELECT steadytext_cancel_async(request_id) FROM steadytext_queue WHERE status IN ('pending', 'processing')`);
};

const limits = async (perRole: number, total: number) => {
  await db.pool.query(`ALTER DATABASE ${db.name} SET steadytext.max_queue_per_role = ${perRole}`);
  await db.pool.query(`ALTER DATABASE ${db.name} SET steadytext.max_queue_size = ${total}`);
};

// ---------------------------------------------------------------------------
// 1. Savepoints: the request-response hand-off recognises the caller's own
//    request whatever (sub)transaction wrote it.
// ---------------------------------------------------------------------------

test('synchronous functions answer inside savepoints at any depth and after a rolled-back one', async () => {
  const c = await db.connect();
  try {
    await c.query('BEGIN');
    await c.query('SAVEPOINT a');
    assert.equal((await one(c, `SELECT steadytext_generate('in a savepoint', use_cache := false) AS r`)).r, 'echo:in a savepoint');
    await c.query('SAVEPOINT b');
    await c.query('SAVEPOINT c');
    assert.equal((await one(c, `SELECT steadytext_generate('three deep', use_cache := false) AS r`)).r, 'echo:three deep');
    await c.query('ROLLBACK TO SAVEPOINT b');
    assert.deepEqual(
      (await one(c, `SELECT steadytext_embed('after a rollback to savepoint', use_cache := false)::text AS r`)).r.startsWith('{'),
      true,
    );
    await c.query('RELEASE SAVEPOINT a');
    assert.equal((await one(c, `SELECT steadytext_generate_choice('pick', ARRAY['x', 'y'], use_cache := false) AS r`)).r, 'x');
    await c.query('COMMIT');
  } finally {
    await c.end();
  }
});

test('get_async_result on a request enqueued inside a savepoint (released or not) hands it off', async () => {
  const c = await db.connect();
  try {
    await c.query('BEGIN');
    await c.query('SAVEPOINT s');
    const id = (await one(c, `SELECT steadytext_generate_async('sub-transaction request') AS id`)).id;
    assert.equal((await one(c, `SELECT steadytext_get_async_result($1, 8) AS r`, [id])).r, 'echo:sub-transaction request');
    const id2 = (await one(c, `SELECT steadytext_generate_async('released savepoint') AS id`)).id;
    await c.query('RELEASE SAVEPOINT s');
    assert.equal((await one(c, `SELECT steadytext_get_async_result($1, 8) AS r`, [id2])).r, 'echo:released savepoint');
    await c.query('COMMIT');
    assert.equal((await one(db.pool, `SELECT status FROM steadytext_queue WHERE request_id = $1`, [id])).status, 'completed');
  } finally {
    await c.end();
  }
});

test('inside a PL/pgSQL EXCEPTION block (a subtransaction) the synchronous call answers', async () => {
  // the example: 1.3.0 waited out the timeout and raised 57014
  const c = await db.connect();
  try {
    await c.query(`DO $$ BEGIN BEGIN PERFORM set_config('iso.got', steadytext_generate('p', 10, use_cache := false), false);
                   EXCEPTION WHEN division_by_zero THEN NULL; END; END $$`);
    assert.equal((await one(c, `SELECT current_setting('iso.got') AS r`)).r, 'echo:p');
  } finally {
    await c.end();
  }
});

test("psql's ON_ERROR_ROLLBACK (a savepoint around every statement) and an ORM-style nested transaction from Node", async () => {
  const script = [
    '\\set ON_ERROR_ROLLBACK on',
    '\\set ON_ERROR_STOP on',
    'BEGIN;',
    "SELECT steadytext_generate('under on_error_rollback', use_cache := false) AS r \\gset",
    'COMMIT;',
    '\\echo RESULT :r',
  ].join('\n');
  // psql runs beside the in-process worker (spawnSync would stop this process's event loop, the worker's too)
  const p = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn('psql', ['-X', '-q', db.url], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(script);
  });
  if (false) console.log('DEBUG', JSON.stringify((await db.pool.query(`SELECT request_id, status, worker_id, handoff_of, parameters->>'prompt' p, error, attempt FROM steadytext_queue ORDER BY created_at`)).rows, null, 1), JSON.stringify((await db.pool.query(`SELECT * FROM steadytext_workers`)).rows), JSON.stringify((await db.pool.query(`SELECT pid, state, wait_event_type, wait_event, left(query, 120) q FROM pg_stat_activity WHERE datname = current_database()`)).rows, null, 1));
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout, /RESULT echo:under on_error_rollback/);

  // what ORMs do for a nested transaction: SAVEPOINT / RELEASE around the inner block
  const c = await db.connect();
  try {
    await c.query('BEGIN');
    await c.query('SAVEPOINT orm_nested_1');
    const id = (await one(c, `SELECT steadytext_embed_async('orm nested') AS id`)).id;
    const v = (await one(c, `SELECT steadytext_get_async_result($1, 8) AS r`, [id])).r as string;
    await c.query('RELEASE SAVEPOINT orm_nested_1');
    await c.query('COMMIT');
    assert.match(v, /^\[/);
  } finally {
    await c.end();
  }
});

// ---------------------------------------------------------------------------
// 2. A timeout is an error PL/pgSQL can handle (STX03), distinct from failed
//    (STX01) and cancelled (STX02).
// ---------------------------------------------------------------------------

test("the spec's generate_and_wait falls back on timeout with WHEN OTHERS (STX03)", async () => {
  await db.pool.query(`
    CREATE OR REPLACE FUNCTION iso_generate_or_fallback(prompt text, timeout integer)
    RETURNS text LANGUAGE plpgsql AS $$
    DECLARE request_id uuid;
    BEGIN
      request_id := steadytext_generate_async(prompt, use_cache := false);
      RETURN steadytext_get_async_result(request_id, timeout);
    EXCEPTION WHEN OTHERS THEN
      RETURN 'fallback:' || SQLSTATE;
    END $$`);
  assert.equal((await one(db.pool, `SELECT iso_generate_or_fallback('sleep:3000', 1) AS r`)).r, 'fallback:STX03');
  // committed request, waited on from another transaction: the same SQLSTATE
  const id = (await one(db.pool, `SELECT steadytext_generate_async('sleep:3000', use_cache := false) AS id`)).id;
  await assertSqlError(db.pool, `SELECT steadytext_get_async_result($1, 0)`, [id], 'STX03', 'did not finish within 0 seconds');
});

// ---------------------------------------------------------------------------
// 3. Locks a tenant can hold in an open transaction stall nobody.
// ---------------------------------------------------------------------------

test("a tenant holding every lock it can take, in an open transaction, stalls neither other tenants nor the worker", async () => {
  const alice = await logins.as('alice', db.url);
  const bob = await logins.as('bob', db.url);
  // a cache entry for 'shared prompt' and a pending job that will write the same entry again
  await one(bob, `SELECT steadytext_generate('shared prompt') AS r`);
  const cached = await one(db.pool, `SELECT cache_key FROM steadytext_cache WHERE parameters->>'prompt' = 'shared prompt'`);
  assert.ok(cached, 'the worker cached the result');
  const failed = (await one(alice, `SELECT steadytext_generate_async('bad-input:nope', use_cache := false) AS id`)).id;
  await waitFor('the bad job failed', async () =>
    (await one(db.pool, `SELECT status FROM steadytext_queue WHERE request_id = $1`, [failed])).status === 'failed');
  const toCancel = (await one(alice, `SELECT steadytext_generate_async('sleep:60000', use_cache := false) AS id`)).id;

  // alice, in one transaction left open: a cache hit, a cancel and a retry of her own rows,
  // and the advisory locks pg_steadytext 1.3.0 used or 1.4.0 uses (eviction, quota keys, hand-off)
  await alice.query('BEGIN');
  const hit = (await one(alice, `SELECT steadytext_generate_async('shared prompt') AS id`)).id;
  assert.equal((await one(alice, `SELECT status FROM steadytext_queue WHERE request_id = $1`, [hit])).status, 'completed');
  assert.equal((await one(alice, `SELECT steadytext_cancel_async($1) AS ok`, [toCancel])).ok, true);
  assert.equal((await one(alice, `SELECT steadytext_retry_failed($1) AS ok`, [failed])).ok, true);
  await alice.query(`SELECT pg_advisory_xact_lock(hashtext('steadytext_cache_evict'))`);
  await alice.query(`SELECT pg_advisory_xact_lock(hashtext('pg_steadytext quota role ' || $1) & 2147483647, k)
                     FROM generate_series(0, 300) AS k`, [logins.names.bob]);
  await alice.query(`SELECT pg_advisory_xact_lock(hashtext('pg_steadytext quota all') & 2147483647, k)
                     FROM generate_series(0, 300) AS k`);

  try {
    await limits(100, 1000); // so that bob's enqueues go through the quota path
    const bob2 = await logins.as('bob', db.url);
    const t0 = Date.now();
    // bob: the same prompt (a cache hit on the entry alice hit), a sync call, and new work
    assert.equal((await one(bob2, `SELECT steadytext_generate('shared prompt') AS r`)).r, 'echo:shared prompt');
    assert.equal((await one(bob2, `SELECT steadytext_generate('bob fresh', use_cache := false) AS r`)).r, 'echo:bob fresh');
    // a worker completion that writes the very cache entry alice hit
    const again = (await one(db.pool, `
      INSERT INTO steadytext_queue (function_name, parameters, cache_key, model_id, owner_role)
      SELECT function_name, parameters, cache_key, model_id, $1 FROM steadytext_cache WHERE cache_key = $2
      RETURNING request_id`, [logins.names.bob, cached.cache_key])).request_id;
    await waitFor('the job writing the hit cache entry completes', async () =>
      (await one(db.pool, `SELECT status FROM steadytext_queue WHERE request_id = $1`, [again])).status === 'completed');
    // the worker's eviction returns instead of queueing behind alice
    await db.pool.query(`ALTER DATABASE ${db.name} SET steadytext.cache_max_entries = 1`);
    const wc = await logins.as('wrk', db.url);
    await wc.query(`SET lock_timeout = '5s'`);
    await one(wc, `SELECT steadytext_cache_evict() AS n`);
    assert.ok(Date.now() - t0 < 30_000, `took ${Date.now() - t0} ms`);
  } finally {
    await alice.query('ROLLBACK');
    await db.pool.query(`SELECT steadytext_cancel_async($1)`, [toCancel]);
    await db.pool.query(`ALTER DATABASE ${db.name} RESET steadytext.cache_max_entries`);
    await limits(0, 0);
  }
});

// ---------------------------------------------------------------------------
// 5, 6. Queue limits hold under concurrency and on every way back to pending.
// ---------------------------------------------------------------------------

test('concurrent open transactions cannot commit past max_queue_per_role or max_queue_size', async () => {
  await limits(10, 25);
  const sessions: pg.Client[] = [];
  try {
    // eight sessions of alice each try 4 in an open transaction; then every one commits
    for (let i = 0; i < 8; i++) sessions.push(await logins.as('alice', db.url));
    const outcomes = await Promise.all(sessions.map(async (s, i) => {
      await s.query('BEGIN');
      try {
        await s.query(`SELECT steadytext_generate_batch_async(ARRAY['q${i}a', 'q${i}b', 'q${i}c', 'q${i}d'], use_cache := false)`);
        return 'ok';
      } catch (err) {
        return (err as { code?: string }).code;
      }
    }));
    assert.ok(outcomes.includes('54000'), `some were refused: ${outcomes}`);
    await Promise.all(sessions.map((s) => s.query('COMMIT').catch(() => s.query('ROLLBACK'))));
    const live = Number((await one(db.pool, `SELECT count(*) AS n FROM steadytext_queue
      WHERE owner_role = $1 AND status IN ('pending', 'processing') AND handoff_of IS NULL`, [logins.names.alice])).n);
    assert.ok(live <= 10, `alice has ${live} live requests under a limit of 10`);

    // the total: bob and three other roles race for what is left of 25
    const others: pg.Client[] = [];
    for (let i = 0; i < 6; i++) others.push(await logins.as('bob', db.url));
    await Promise.all(others.map(async (s, i) => {
      await s.query('BEGIN');
      await s.query(`SELECT steadytext_generate_batch_async(ARRAY['t${i}a', 't${i}b', 't${i}c'], use_cache := false)`).catch(() => {});
    }));
    await Promise.all(others.map((s) => s.query('COMMIT').catch(() => s.query('ROLLBACK'))));
    const all = Number((await one(db.pool, `SELECT count(*) AS n FROM steadytext_queue
      WHERE status IN ('pending', 'processing') AND handoff_of IS NULL`)).n);
    assert.ok(all <= 25, `${all} live requests under max_queue_size 25`);
  } finally {
    await Promise.all(sessions.map((s) => s.end().catch(() => {})));
    await cancelLive();
    await limits(0, 0);
  }
});

test('steadytext_retry_failed counts against the quota: 54000 and the row stays failed', async () => {
  const c = await logins.as('bob', db.url);
  // three failed requests of bob's that, retried, stay live (the worker sleeps on them)
  const failedIds: string[] = (await db.pool.query(
    `INSERT INTO steadytext_queue (function_name, parameters, status, error, completed_at, failed_at, owner_role)
     SELECT 'generate', jsonb_build_object('prompt', 'sleep:60000 r' || i, 'max_tokens', 512, 'use_cache', false, 'seed', 42),
            'failed', 'earlier failure', now(), now(), $1
     FROM generate_series(0, 2) AS i RETURNING request_id`, [logins.names.bob])).rows.map((r) => r.request_id);
  await limits(2, 0);
  try {
    await one(c, `SELECT steadytext_generate_async('sleep:60000', use_cache := false) AS id`);
    assert.equal((await one(c, `SELECT steadytext_retry_failed($1) AS ok`, [failedIds[0]])).ok, true);
    await assertSqlError(c, `SELECT steadytext_retry_failed($1)`, [failedIds[1]], '54000', 'max_queue_per_role');
    assert.equal((await one(db.pool, `SELECT status FROM steadytext_queue WHERE request_id = $1`, [failedIds[1]])).status, 'failed');
  } finally {
    await cancelLive();
    await limits(0, 0);
  }
});

// ---------------------------------------------------------------------------
// 8. A leaked hand-off password can do no more than the hand-off does.
// ---------------------------------------------------------------------------

test('the hand-off login cannot choose a cache key, a model, limits or an owner it is not handing off for', async () => {
  const cfg = await one(db.pool, `SELECT (SELECT value #>> '{}' FROM steadytext_config WHERE key = 'handoff_user') AS login,
                                         (SELECT value #>> '{}' FROM steadytext_config WHERE key = 'handoff_password') AS pw`);
  const u = new URL(db.url);
  u.username = cfg.login;
  u.password = cfg.pw;
  const { default: pgMod } = await import('pg');
  const h = new pgMod.Client({ connectionString: u.toString() });
  await h.connect();
  try {
    // 1.3.0's form, with a chosen cache key, model, owner, retries and timeout, is gone
    await assertSqlError(h, `SELECT _steadytext_handoff_insert(gen_random_uuid(), 'generate',
        '{"prompt":"x","max_tokens":5,"use_cache":true,"seed":42}', 0, 'victim-key', 'm', $1, 1000000, 1000000)`,
      [logins.names.bob], '42883');
    // a victim with no transaction waiting: refused
    const idle = await logins.as('bob', db.url);
    const pid = (await one(idle, `SELECT pg_backend_pid() AS p`)).p;
    await assertSqlError(h, `SELECT _steadytext_handoff_insert(gen_random_uuid(), 'generate',
        '{"prompt":"x","max_tokens":5,"use_cache":true,"seed":42}'::jsonb, 0, $1, $2)`,
      [logins.names.bob, pid], '42501', 'not a transaction of role');
    // a backend of another role: refused
    await limits(50, 0);
    const a = await logins.as('alice', db.url);
    await a.query('BEGIN');
    await one(a, `SELECT steadytext_generate_async('alice open', use_cache := false) AS id`);
    const apid = (await one(a, `SELECT pg_backend_pid() AS p`)).p;
    await assertSqlError(h, `SELECT _steadytext_handoff_insert(gen_random_uuid(), 'generate',
        '{"prompt":"x","max_tokens":5,"use_cache":true,"seed":42}'::jsonb, 0, $1, $2)`,
      [logins.names.bob, apid], '42501');
    // under limits, one open request of alice's backs at most one copy
    const b2 = await logins.as('alice', db.url);
    await b2.query('BEGIN');
    await one(b2, `SELECT steadytext_generate_async('alice second', use_cache := false) AS id`);
    const b2pid = (await one(b2, `SELECT pg_backend_pid() AS p`)).p;
    const copy = (await one(h, `SELECT _steadytext_handoff_insert(gen_random_uuid(), 'generate',
        '{"prompt":"sleep:60000 planted","max_tokens":5,"use_cache":true,"seed":42}'::jsonb, 0, $1, $2) AS id`, [logins.names.alice, b2pid])).id;
    const row = await one(db.pool, `SELECT cache_key, model_id, max_retries, timeout_seconds,
        cache_key = steadytext_cache_key('generate', model_id, parameters) AS derived FROM steadytext_queue WHERE request_id = $1`, [copy]);
    assert.equal(row.derived, true, 'the copy carries the cache key computed from its own parameters');
    assert.equal(row.max_retries, null);
    assert.equal(row.timeout_seconds, null);
    // alice has two open transactions with one request each: a third live copy is refused
    await one(h, `SELECT _steadytext_handoff_insert(gen_random_uuid(), 'generate',
        '{"prompt":"sleep:60000 planted 2","max_tokens":5,"use_cache":true,"seed":42}'::jsonb, 0, $1, $2) AS id`, [logins.names.alice, b2pid]);
    await assertSqlError(h, `SELECT _steadytext_handoff_insert(gen_random_uuid(), 'generate',
        '{"prompt":"sleep:60000 planted 3","max_tokens":5,"use_cache":true,"seed":42}'::jsonb, 0, $1, $2)`,
      [logins.names.alice, b2pid], '54000', 'no open request left');
    await a.query('ROLLBACK');
    await b2.query('ROLLBACK');
  } finally {
    await h.end();
    await cancelLive();
    await limits(0, 0);
  }
});

// ---------------------------------------------------------------------------
// 10. A worker login deletes nothing but under an admin-set retention policy.
// ---------------------------------------------------------------------------

test('a worker login deletes nothing without the admin-set retention, and cannot make a request look old', async () => {
  const w = await logins.as('wrk', db.url);
  const id = (await one(db.pool, `SELECT steadytext_generate_async('keep me', use_cache := false) AS id`)).id;
  await waitFor('completed', async () =>
    (await one(db.pool, `SELECT status FROM steadytext_queue WHERE request_id = $1`, [id])).status === 'completed');
  // 1.3.0: interval '0' deleted every unread result
  assert.equal(Number((await one(w, `SELECT steadytext_cleanup_results(interval '0') AS n`)).n), 0);
  // rewriting the row to look ancient: created_at is not the worker's to write
  await assertSqlError(w, `UPDATE steadytext_queue SET created_at = '-infinity' WHERE request_id = $1`, [id], '42501');
  await w.query(`UPDATE steadytext_queue SET status = 'cancelled', completed_at = '-infinity' WHERE request_id = $1`, [id]);
  await db.pool.query(`INSERT INTO steadytext_config (key, value) VALUES ('result_retention', '"1 hour"')`);
  try {
    assert.equal(Number((await one(w, `SELECT steadytext_cleanup_results(interval '0') AS n`)).n), 0);
    assert.equal(Number((await one(db.pool, `SELECT count(*) AS n FROM steadytext_queue WHERE request_id = $1`, [id])).n), 1);
    // rows really older than the policy go
    await db.pool.query(`UPDATE steadytext_queue SET created_at = now() - interval '2 hours', completed_at = now() - interval '2 hours'
                         WHERE request_id = $1`, [id]);
    assert.equal(Number((await one(w, `SELECT steadytext_cleanup_results(interval '0') AS n`)).n), 1);
  } finally {
    await db.pool.query(`DELETE FROM steadytext_config WHERE key = 'result_retention'`);
  }
});
