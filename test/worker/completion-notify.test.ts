import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CompletionPayload } from '../../src/interfaces.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { enqueue, gen, startTestWorker, waitFor } from './fixtures/queue.ts';

test('a LISTEN client receives exactly one steadytext_completed per job, retries included', async () => {
  const db = await createTestDatabase();
  const listener = await db.connect();
  const got: CompletionPayload[] = [];
  listener.on('notification', (n) => {
    if (n.channel === 'steadytext_completed') got.push(JSON.parse(n.payload!));
  });
  await listener.query('LISTEN steadytext_completed');
  const worker = await startTestWorker(db.url, { concurrency: 3 });
  try {
    const plain = await enqueue(db.pool, [
      ...Array.from({ length: 10 }, (_, i) => gen(`hello ${i}`)),
      gen('throw:always', { max_retries: 2 }), // two retries, then one 'failed'
    ]);
    const batch = (
      await db.pool.query(`SELECT steadytext_embed_batch_async(ARRAY['a','b','c'], use_cache := false) AS ids`)
    ).rows[0].ids as string[];
    const all = [...plain, ...batch];
    await waitFor('every job terminal', async () => {
      const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE status IN ('completed','failed')`);
      return r.rows[0].n === all.length;
    });
    // Notifications arrive after commit; give stragglers (and any duplicate) time to show.
    await waitFor('notifications', async () => got.length >= all.length);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got.length, all.length, 'one notification per job');
    assert.deepEqual(new Set(got.map((p) => p.request_id)), new Set(all));
    const byId = new Map(got.map((p) => [p.request_id, p]));
    assert.deepEqual(byId.get(plain[0]), { request_id: plain[0], function: 'generate', status: 'completed' });
    assert.equal(byId.get(plain[10])!.status, 'failed');
    const batchId = (await db.pool.query(`SELECT batch_id FROM steadytext_queue WHERE request_id = $1`, [batch[0]])).rows[0]
      .batch_id;
    for (const id of batch) assert.deepEqual(byId.get(id), { request_id: id, function: 'embed', status: 'completed', batch_id: batchId });
  } finally {
    await worker.stop();
    await db.drop();
  }
});
