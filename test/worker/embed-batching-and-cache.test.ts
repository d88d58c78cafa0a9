import { test } from 'node:test';
import assert from 'node:assert/strict';
import { events } from '../helpers/scriptedEngine.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { startTestWorker, waitFor } from './fixtures/queue.ts';

async function embedAll(batchEmbeddings: boolean): Promise<{ calls: number; results: string[] }> {
  const db = await createTestDatabase();
  try {
    const texts = Array.from({ length: 8 }, (_, i) => `${batchEmbeddings ? 'batched' : 'single'} text ${i}`);
    const ids = (await db.pool.query(`SELECT steadytext_embed_batch_async($1::text[], use_cache := false) AS ids`, [texts]))
      .rows[0].ids as string[];
    const before = events.length;
    const worker = await startTestWorker(db.url, { concurrency: 8, batchEmbeddings });
    try {
      const rows = await waitFor('all embedded', async () => {
        const r = await db.pool.query(`SELECT request_id, result FROM steadytext_queue WHERE status = 'completed'`);
        return r.rows.length === ids.length ? new Map(r.rows.map((x) => [x.request_id, x.result as string])) : null;
      });
      const calls = events.slice(before).filter((e) => e.call === 'embed').length;
      return { calls, results: ids.map((id) => rows.get(id)!) };
    } finally {
      await worker.stop();
    }
  } finally {
    await db.drop();
  }
}

test('embed jobs claimed together share one engine.embed call, with the same results as one by one', async () => {
  const batched = await embedAll(true);
  const single = await embedAll(false);
  console.log(`8 embed jobs: ${batched.calls} engine call(s) batched, ${single.calls} unbatched`);
  assert.equal(single.calls, 8);
  assert.ok(batched.calls < 8, `batched used ${batched.calls} calls`);
  // Same texts modulo the prefix: compare each result to its own single-call form.
  for (const r of [...batched.results, ...single.results]) assert.match(r, /^\[[-\d.e,]+\]$/);
  const { createScriptedEngine } = await import('../helpers/scriptedEngine.ts');
  const engine = createScriptedEngine();
  for (const [i, r] of batched.results.entries()) {
    const [v] = await engine.embed([`batched text ${i}`]);
    assert.equal(r, `[${v.join(',')}]`, 'a job gets its own text\'s vector, in order');
  }
});

test('use_cache: a completed result is stored in steadytext_cache and the next identical request is born completed', async () => {
  const db = await createTestDatabase();
  const worker = await startTestWorker(db.url);
  try {
    const first = (await db.pool.query(`SELECT steadytext_generate_async('cache me', use_cache := true) AS id`)).rows[0].id;
    const done = await waitFor('completed', async () => {
      const r = await db.pool.query(`SELECT * FROM steadytext_queue WHERE request_id = $1 AND status = 'completed'`, [first]);
      return r.rows[0];
    });
    const c = await db.pool.query(`SELECT result, model_id FROM steadytext_cache WHERE cache_key = $1`, [done.cache_key]);
    assert.deepEqual(c.rows, [{ result: 'echo:cache me', model_id: 'scripted-generation' }]);
    const second = (await db.pool.query(`SELECT steadytext_generate_async('cache me', use_cache := true) AS id`)).rows[0].id;
    const hit = await db.pool.query(`SELECT status, result, worker_id FROM steadytext_queue WHERE request_id = $1`, [second]);
    assert.deepEqual(hit.rows[0], { status: 'completed', result: 'echo:cache me', worker_id: null });
    // use_cache := false leaves the cache alone.
    const third = (await db.pool.query(`SELECT steadytext_generate_async('no cache', use_cache := false) AS id`)).rows[0].id;
    await waitFor('completed', async () =>
      (await db.pool.query(`SELECT 1 FROM steadytext_queue WHERE request_id = $1 AND status = 'completed'`, [third])).rows[0]);
    const n = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_cache`);
    assert.equal(n.rows[0].n, 1);
    // The worker published its model ids, which the enqueue functions use for keys.
    const cfg = await db.pool.query(`SELECT key, value FROM steadytext_config WHERE key LIKE 'model.%' ORDER BY key`);
    assert.deepEqual(cfg.rows, [
      { key: 'model.embedding', value: 'scripted-embedding' },
      { key: 'model.generation', value: 'scripted-generation' },
      { key: 'model.reranking', value: 'scripted-reranking' },
    ]);
  } finally {
    await worker.stop();
    await db.drop();
  }
});
