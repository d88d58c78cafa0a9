import { test } from 'node:test';
import { createTestDatabase } from '../helpers/db.ts';
import { startTestWorker, waitFor } from './fixtures/queue.ts';

test('the worker runs steadytext_cache_evict() periodically', async () => {
  const db = await createTestDatabase();
  await db.pool.query(`ALTER DATABASE ${db.name} SET steadytext.cache_max_entries = '2'`);
  await db.pool.query(
    `INSERT INTO steadytext_cache (cache_key, function_name, model_id, parameters, result)
     SELECT 'k' || i, 'generate', 'm', '{}', 'r' FROM generate_series(1, 5) AS i`,
  );
  const worker = await startTestWorker(db.url, { cacheEvictInterval: '0.2' });
  try {
    await waitFor('evicted down to 2', async () => {
      const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_cache`);
      return r.rows[0].n === 2;
    }, 5000);
  } finally {
    await worker.stop();
    await db.drop();
  }
});
