// steadytext_worker_status, steadytext_queue_stats, steadytext_cache_key and
// the cache functions (stats, clear, frecency eviction).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { assertSqlError } from './helpers.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db.drop();
});

test('worker_status: live, silent-past-timeout (dead), recently stopped; long-gone workers hidden', async () => {
  await db.pool.query(`
    INSERT INTO steadytext_workers (worker_id, host, pid, last_heartbeat, status, heartbeat_timeout_seconds, jobs_completed, jobs_failed, current_jobs, started_at)
    VALUES ('live', 'h1', 11, now(), 'running', 15, 7, 1, 2, now() - interval '10 minutes'),
           ('silent', 'h2', 12, now() - interval '20 seconds', 'running', 15, 0, 0, 1, now() - interval '9 minutes'),
           ('stopped', 'h3', 13, now() - interval '5 minutes', 'stopped', 15, 3, 0, 0, now() - interval '8 minutes'),
           ('ancient', 'h4', 14, now() - interval '2 hours', 'stopped', 15, 0, 0, 0, now() - interval '3 hours')`);
  const r = await db.pool.query(`SELECT * FROM steadytext_worker_status()`);
  assert.deepEqual(r.rows.map((x) => [x.worker_id, x.status, x.host, x.pid, Number(x.jobs_completed), Number(x.jobs_failed), x.current_jobs]), [
    ['live', 'running', 'h1', 11, 7, 1, 2],
    ['silent', 'dead', 'h2', 12, 0, 0, 1],
    ['stopped', 'stopped', 'h3', 13, 3, 0, 0],
  ]);
  assert.deepEqual(Object.keys(r.rows[0]), ['worker_id', 'host', 'pid', 'started_at', 'last_heartbeat', 'jobs_completed', 'jobs_failed', 'current_jobs', 'status']);
});

test('queue_stats: counts per function and status, oldest pending age, processing times of the last hour', async () => {
  await db.pool.query(`
    INSERT INTO steadytext_queue (function_name, parameters, status, created_at, started_at, completed_at, result)
    SELECT 'generate', '{}', 'completed', now() - interval '10 minutes',
           now() - interval '10 minutes', now() - interval '10 minutes' + g * interval '1 second', 'x'
    FROM generate_series(1, 20) g;
    INSERT INTO steadytext_queue (function_name, parameters, status, created_at, started_at, completed_at, result)
    VALUES ('generate', '{}', 'completed', now() - interval '3 hours', now() - interval '3 hours', now() - interval '2 hours', 'old');
    INSERT INTO steadytext_queue (function_name, parameters, status, created_at)
    VALUES ('embed', '{}', 'pending', now() - interval '90 seconds'), ('embed', '{}', 'pending', now());`);
  const r = await db.pool.query(`SELECT * FROM steadytext_queue_stats()`);
  const by = Object.fromEntries(r.rows.map((x) => [`${x.function_name}/${x.status}`, x]));
  assert.deepEqual(Object.keys(by).sort(), ['embed/pending', 'generate/completed']);
  assert.equal(Number(by['generate/completed'].count), 21);
  assert.equal(by['generate/completed'].avg_processing_seconds, 10.5); // the 2-hour-old job is not in the last hour
  assert.ok(Math.abs(by['generate/completed'].p95_processing_seconds - 19.05) < 1e-6);
  assert.equal(by['generate/completed'].oldest_pending_age_seconds, null);
  assert.equal(Number(by['embed/pending'].count), 2);
  assert.ok(by['embed/pending'].oldest_pending_age_seconds >= 90 && by['embed/pending'].oldest_pending_age_seconds < 100);
  assert.equal(by['embed/pending'].avg_processing_seconds, null);
});

test('cache_key: deterministic, ignores parameters that do not change the output, differs by model and function', async () => {
  const key = async (fn: string, model: string, params: object) =>
    (await db.pool.query(`SELECT steadytext_cache_key($1, $2, $3) AS k`, [fn, model, params])).rows[0].k as string;
  const base = { prompt: 'p', max_tokens: 10, seed: 1, use_cache: true };
  const k = await key('generate', 'm', base);
  assert.match(k, /^[0-9a-f]{64}$/);
  assert.equal(await key('generate', 'm', { seed: 1, max_tokens: 10, prompt: 'p', use_cache: false, priority: 9 }), k);
  assert.notEqual(await key('generate', 'm', { ...base, seed: 2 }), k);
  assert.notEqual(await key('generate', 'm2', base), k);
  assert.notEqual(await key('generate_json', 'm', base), k);
  assert.notEqual(await key('generate_json', 'm', { ...base, schema: { type: 'object' } }), await key('generate_json', 'm', base));
  assert.equal(await key('embed', 'm', { text_input: 'x', use_cache: true }), await key('embed', 'm', { text_input: 'x', use_cache: false }));
  const rr = { query: 'q', documents: ['a', 'b'], task: 't', seed: 42, use_cache: true };
  assert.notEqual(await key('rerank', 'm', rr), await key('rerank', 'm', { ...rr, documents: ['b', 'a'] }));
  await assertSqlError(db.pool, `SELECT steadytext_cache_key('summarize', 'm', '{}')`, [], '22023', 'function_name');
  const v = await db.pool.query(`SELECT provolatile FROM pg_proc WHERE proname = 'steadytext_cache_key'`);
  assert.equal(v.rows[0].provolatile, 'i');
});

test('cache_stats, cache_evict (lowest frecency first, down to cache_max_entries), cache_clear', async () => {
  const c = await db.connect();
  await c.query(`
    INSERT INTO steadytext_cache (cache_key, function_name, model_id, parameters, result, last_accessed, access_count, created_at)
    VALUES ('hot',     'generate', 'm', '{}', 'r1', now(),                      50, now() - interval '2 days'),
           ('old-hot', 'generate', 'm', '{}', 'r2', now() - interval '100 hours', 50, now() - interval '5 days'),
           ('fresh',   'generate', 'm', '{}', 'r3', now(),                       1, now()),
           ('stale',   'generate', 'm', '{}', 'r4', now() - interval '10 hours',  2, now() - interval '1 day'),
           ('dead',    'generate', 'm', '{}', 'r5', now() - interval '48 hours',  1, now() - interval '3 days')`);
  const s = (await c.query(`SELECT * FROM steadytext_cache_stats()`)).rows[0];
  assert.equal(Number(s.entries), 5);
  assert.equal(Number(s.hits), 49 + 49 + 0 + 1 + 0);
  assert.equal(Number(s.max_entries), 10000);
  assert.ok(Number(s.total_bytes) > 0);
  assert.ok(s.oldest_entry < s.newest_entry);
  assert.equal(Number((await c.query(`SELECT steadytext_cache_evict() AS n`)).rows[0].n), 0, 'under the limit nothing goes');
  // scores: hot 50, fresh 1, old-hot 50/101 = 0.495, stale 2/11 = 0.18, dead 1/49 = 0.02
  await c.query(`SET steadytext.cache_max_entries = 3`);
  assert.equal(Number((await c.query(`SELECT steadytext_cache_evict() AS n`)).rows[0].n), 2);
  const left = await c.query(`SELECT cache_key FROM steadytext_cache ORDER BY cache_key`);
  assert.deepEqual(left.rows.map((x) => x.cache_key), ['fresh', 'hot', 'old-hot']);
  assert.equal(Number((await c.query(`SELECT steadytext_cache_clear() AS n`)).rows[0].n), 3);
  assert.equal(Number((await c.query(`SELECT entries FROM steadytext_cache_stats()`)).rows[0].entries), 0);
});
