// Scenario 4: claim latency with a deep table (mostly completed rows) versus a
// shallow one. The claim and complete statements are the worker's own
// (src/db/claimJobs.ts, completeJob.ts), run serially from one connection.
import pg from 'pg';
import { claimJobs } from '../../src/db/claimJobs.ts';
import { completeJob } from '../../src/db/completeJob.ts';
import { dist, now, type Dist } from '../lib/stats.ts';
import type { Progress } from './queue.ts';

export interface DepthResult {
  rows: number;
  pending: number;
  claims: number;
  claim: Dist;
  complete: Dist;
  fillSeconds: number;
}

/**
 * Fills steadytext_queue with `rows - pending` completed rows (triggers off
 * for the fill: session_replication_role = replica, so no 1M NOTIFYs) and
 * `pending` pending rows, VACUUM ANALYZE (what autovacuum would have done),
 * then claims one job at a time `claims` times, completing each.
 */
export async function claimAtDepth(url: string, rows: number, pending: number, claims: number, progress: Progress): Promise<DepthResult> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const label = `depth ${rows.toLocaleString('en-US')} rows`;
  try {
    await db.query('TRUNCATE steadytext_queue');
    const t0 = now();
    const old = rows - pending;
    await db.query("SET session_replication_role = replica");
    const chunk = 100_000;
    for (let done = 0; done < old; done += chunk) {
      const k = Math.min(chunk, old - done);
      await db.query(
        `INSERT INTO steadytext_queue (function_name, parameters, status, result, created_at, started_at, completed_at, attempt, worker_id)
         SELECT 'generate', jsonb_build_object('prompt', 'old ' || i, 'max_tokens', 1, 'use_cache', false, 'seed', 42),
                'completed', 'ok', t, t, t, 1, 'bench-old'
         FROM generate_series($1::int, $2::int) AS i,
              LATERAL (SELECT now() - interval '1 day' + i * interval '1 ms') AS x(t)`,
        [done, done + k - 1],
      );
      progress(label + ' (fill)', done + k, rows);
    }
    await db.query('RESET session_replication_role');
    await db.query(
      `SELECT steadytext_generate_batch_async(array(SELECT 'new ' || i FROM generate_series(1, $1::int) AS i), max_tokens => 1, use_cache => false)`,
      [pending],
    );
    await db.query('VACUUM ANALYZE steadytext_queue');
    const fillSeconds = (now() - t0) / 1000;
    const claim: number[] = [];
    const complete: number[] = [];
    for (let i = 0; i < 20; i++) {
      // warm-up (prepares the named statements)
      const [j] = await claimJobs(db, 'bench', 1, 3, null, null, 1);
      await completeJob(db, j.request_id, 'bench', j.attempt, 'ok', null);
    }
    for (let i = 0; i < claims; i++) {
      const a = now();
      const [j] = await claimJobs(db, 'bench', 1, 3, null, null, 1);
      const b = now();
      if (!j) throw new Error('ran out of pending jobs');
      await completeJob(db, j.request_id, 'bench', j.attempt, 'ok', null);
      complete.push(now() - b);
      claim.push(b - a);
      if (i % 50 === 0) progress(label, i, claims);
    }
    progress(label, claims, claims);
    await db.query('TRUNCATE steadytext_queue');
    return { rows, pending, claims, claim: dist(claim), complete: dist(complete), fillSeconds: Math.round(fillSeconds * 10) / 10 };
  } finally {
    await db.end();
  }
}
