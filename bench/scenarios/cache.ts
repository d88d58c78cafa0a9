// The cache-hit path: a repeated request with use_cache is answered inside the
// enqueue call (the row is born 'completed'; no worker involved).
import pg from 'pg';
import { dist, now, round, type Dist } from '../lib/stats.ts';
import type { Progress } from './queue.ts';

export interface CacheHitResult {
  requests: number;
  requestsPerSecond: number;
  /** one enqueue call (its own transaction) that hits the cache, client round trip, ms */
  latency: Dist;
  /** the same call when it misses (inserts a pending row), for comparison */
  missLatency: Dist;
}

export async function cacheHit(url: string, requests: number, progress: Progress): Promise<CacheHitResult> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await db.query('TRUNCATE steadytext_queue, steadytext_cache');
    // The result a worker would have cached for this request.
    await db.query(
      `INSERT INTO steadytext_cache (cache_key, function_name, model_id, parameters, result)
       SELECT steadytext_cache_key('generate', _steadytext_model_id('generation'), p), 'generate',
              _steadytext_model_id('generation'), p, 'cached answer'
       FROM (SELECT jsonb_build_object('prompt', 'cached prompt', 'max_tokens', 512, 'use_cache', true, 'seed', 42) AS p) s`,
    );
    const q = { name: 'bench_cache_hit', text: "SELECT steadytext_generate_async('cached prompt') AS id" };
    const first = await db.query<{ id: string }>(q);
    const st = await db.query('SELECT status, result FROM steadytext_queue WHERE request_id = $1', [first.rows[0].id]);
    if (st.rows[0].status !== 'completed') throw new Error(`cache hit expected, row is ${st.rows[0].status}`);
    for (let i = 0; i < 100; i++) await db.query(q);
    const lat: number[] = [];
    const t0 = now();
    for (let i = 0; i < requests; i++) {
      const a = now();
      await db.query(q);
      lat.push(now() - a);
      if (i % 500 === 0) progress('cache hit', i, requests);
    }
    const seconds = (now() - t0) / 1000;
    const miss: number[] = [];
    const m = Math.min(1000, requests);
    for (let i = 0; i < m; i++) {
      const a = now();
      await db.query("SELECT steadytext_generate_async('miss ' || $1::text)", [i]);
      miss.push(now() - a);
    }
    progress('cache hit', requests, requests);
    await db.query('TRUNCATE steadytext_queue, steadytext_cache');
    return { requests, requestsPerSecond: round(requests / seconds, 1), latency: dist(lat), missLatency: dist(miss) };
  } finally {
    await db.end();
  }
}
