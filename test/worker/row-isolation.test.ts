// issue 10, item 4 (worker side): one bad row can never fail another job.
// Results are stored together in one grouped statement; a row that statement
// cannot store fails alone with a clear error and every other job completes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { completeJobs } from '../../src/db/jobs/completeJobs.ts';
import { enqueue, gen, row, startTestWorker, waitFor } from './fixtures/queue.ts';

const settled = (s: string) => s === 'completed' || s === 'failed';

test('a row with a non-boolean use_cache, written straight into the queue, fails alone; its group completes', async () => {
  const db = await createTestDatabase();
  try {
    const good = await enqueue(
      db.pool,
      Array.from({ length: 7 }, (_, i) => gen(`good ${i}`, { parameters: { prompt: `good ${i}`, use_cache: true } })),
    );
    // What a tenant could store through an internal helper: parameters the
    // public functions refuse, and a cache key, so the completion would try to cache it.
    const bad = (
      await db.pool.query(
        `INSERT INTO steadytext_queue (function_name, parameters, cache_key)
         VALUES ('generate', '{"prompt": "bad", "use_cache": "maybe"}', 'k-bad') RETURNING request_id`,
      )
    ).rows[0].request_id as string;
    const worker = await startTestWorker(db.url, { concurrency: 8, heartbeatTimeout: '10' });
    try {
      await waitFor('all settled', async () => {
        const rows = await Promise.all([...good, bad].map((id) => row(db.pool, id)));
        return rows.every((r) => settled(r.status));
      });
      const b = await row(db.pool, bad);
      assert.equal(b.status, 'failed');
      assert.equal(b.retry_count, 0, 'bad input is not retried');
      assert.match(b.error, /generate: parameters\.use_cache must be a boolean/);
      for (const id of good) {
        const r = await row(db.pool, id);
        assert.deepEqual([r.status, r.retry_count, r.error], ['completed', 0, null]);
      }
    } finally {
      await worker.stop();
    }
  } finally {
    await db.drop();
  }
});

test('the grouped completion statement itself cannot fail on a non-boolean use_cache', async () => {
  const db = await createTestDatabase();
  try {
    const ids = await enqueue(db.pool, [gen('a'), gen('b'), gen('c')]);
    await db.pool.query(
      `UPDATE steadytext_queue SET status = 'processing', worker_id = 'w', attempt = 1, cache_key = 'k-' || request_id, model_id = 'm',
              parameters = parameters || jsonb_build_object('use_cache', CASE WHEN request_id = $1 THEN '"maybe"'::jsonb ELSE 'true'::jsonb END)
       WHERE request_id = ANY($2::uuid[])`,
      [ids[1], ids],
    );
    const { counted } = await completeJobs(
      db.pool,
      'w',
      ids.map((id) => ({ requestId: id, attempt: 1, result: `r ${id}`, modelId: 'm' })),
    );
    assert.equal(counted.size, 3);
    for (const id of ids) assert.equal((await row(db.pool, id)).status, 'completed');
    const cached = await db.pool.query(`SELECT cache_key FROM steadytext_cache ORDER BY cache_key`);
    assert.deepEqual(cached.rows.map((r) => r.cache_key), [ids[0], ids[2]].map((id) => `k-${id}`).sort(), 'only use_cache = true is cached');
  } finally {
    await db.drop();
  }
});

test('a result the database refuses fails its own job at once; the other jobs of its group complete', async () => {
  const db = await createTestDatabase();
  try {
    // A result PostgreSQL will not store (here: a constraint the test adds).
    await db.pool.query(
      `ALTER TABLE steadytext_queue ADD CONSTRAINT test_no_poison CHECK (result IS DISTINCT FROM 'echo:poison') NOT VALID`,
    );
    const ids = await enqueue(db.pool, [
      ...Array.from({ length: 4 }, (_, i) => gen(`fine ${i}`)),
      gen('poison'),
      ...Array.from({ length: 4 }, (_, i) => gen(`fine ${i + 4}`)),
    ]);
    const poison = ids[4];
    // A generous heartbeat timeout: on a loaded machine a 1 s one can expire and count a retry of its own.
    const worker = await startTestWorker(db.url, { concurrency: 9, heartbeatTimeout: '10' });
    try {
      await waitFor('all settled', async () => {
        const rows = await Promise.all(ids.map((id) => row(db.pool, id)));
        return rows.every((r) => settled(r.status));
      });
      const p = await row(db.pool, poison);
      assert.equal(p.status, 'failed');
      assert.equal(p.retry_count, 0, 'a result the database refuses is not worth a retry');
      assert.match(p.error, /^could not store the result: .*test_no_poison/);
      for (const id of ids.filter((x) => x !== poison)) {
        const r = await row(db.pool, id);
        assert.deepEqual([r.status, r.retry_count, r.error], ['completed', 0, null]);
      }
      assert.equal(worker.stats.jobsCompleted, 8);
      assert.equal(worker.stats.jobsFailed, 1);
    } finally {
      await worker.stop();
    }
  } finally {
    await db.drop();
  }
});
