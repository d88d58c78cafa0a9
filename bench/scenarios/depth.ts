// Scenario 4: claim latency with a deep table (mostly completed rows) versus a
// shallow one. The claim and complete statements are the worker's own
// (src/db/jobs/claimJobs.ts, completeJobs.ts), run serially from one connection.
//
// Method (bench/lib/pairs.ts): the two tables live in two databases of the
// same server, filled once; then `pairs` pairs of blocks of claims, shallow
// and deep in turns, each block sized (from a warm-up estimate) to last at
// least `minSeconds`. The ratio deep p50 / shallow p50 is taken per pair and
// reported as median and spread.
import pg from 'pg';
import { claimJobs } from '../../src/db/jobs/claimJobs.ts';
import { completeJob } from '../../src/db/jobs/completeJobs.ts';
import { interleave, spread, type Spread } from '../lib/pairs.ts';
import { dist, now, round, type Dist } from '../lib/stats.ts';
import type { Progress } from './queue.ts';

/** One block of serial claims on one table. */
export interface DepthBlock {
  rows: number;
  pair: number;
  claims: number;
  seconds: number;
  claim: Dist;
  complete: Dist;
  /** Run again with more claims (a block of its pair was shorter than minSeconds): not counted. */
  redone?: true;
}

export interface DepthResult {
  /** Rows in the shallow and the deep table (completed rows, plus `pending` pending ones). */
  small: number;
  big: number;
  pending: number;
  /** Claims per block (sized from the warm-up estimate; the last pair's, see `redone`) and pairs of blocks. */
  claims: number;
  /** Pairs run again with more claims because a block was shorter than minSeconds (not counted). */
  redone: number;
  pairs: number;
  minSeconds: number;
  fillSeconds: number;
  blocks: DepthBlock[];
  /** Each side's claim p50 per block (ms). */
  smallP50: Spread;
  bigP50: Spread;
  /** Deep claim p50 / shallow claim p50, per pair. */
  ratio: Spread;
}

/**
 * Fills steadytext_queue with `rows - pending` completed rows (triggers off
 * for the fill: session_replication_role = replica, so no 1M NOTIFYs) and
 * `pending` pending rows.
 */
async function fill(db: pg.Client, rows: number, pending: number, progress: Progress, label: string): Promise<void> {
  await db.query('TRUNCATE steadytext_queue');
  const old = rows - pending;
  await db.query('SET session_replication_role = replica');
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
    progress(label, done + k, rows);
  }
  await db.query('RESET session_replication_role');
  await enqueue(db, pending);
}

const enqueue = (db: pg.Client, n: number) =>
  db.query(
    `SELECT steadytext_generate_batch_async(array(SELECT 'new ' || i FROM generate_series(1, $1::int) AS i), max_tokens => 1, use_cache => false)`,
    [n],
  );

/**
 * Puts the table back as filled (the rows the last block claimed and
 * completed deleted, `claims` pending rows added for the next block), then
 * VACUUM ANALYZE (what autovacuum would have done): every block starts from
 * the same table.
 */
async function prepare(db: pg.Client, claims: number): Promise<void> {
  await db.query("DELETE FROM steadytext_queue WHERE worker_id = 'bench'");
  await enqueue(db, claims);
  await db.query('VACUUM ANALYZE steadytext_queue');
}

/** `claims` serial claims of one job each, each completed; claim and complete times (ms). */
async function claimSerially(db: pg.Client, claims: number, onStep?: (i: number) => void) {
  const claim: number[] = [];
  const complete: number[] = [];
  const t0 = now();
  for (let i = 0; i < claims; i++) {
    const a = now();
    const [j] = await claimJobs(db, 'bench', 1, 3, null, null, 1);
    const b = now();
    if (!j) throw new Error('ran out of pending jobs');
    await completeJob(db, j.request_id, 'bench', j.attempt, 'ok', null);
    complete.push(now() - b);
    claim.push(b - a);
    if (i % 50 === 0) onStep?.(i);
  }
  return { claim, complete, seconds: (now() - t0) / 1000 };
}

export async function depthScenario(
  urls: { small: string; big: string },
  opts: { small: number; big: number; pending: number; pairs: number; minSeconds: number },
  progress: Progress,
): Promise<DepthResult> {
  const connect = async (url: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    return c;
  };
  const dbs = { small: await connect(urls.small), big: await connect(urls.big) };
  try {
    const t0 = now();
    await fill(dbs.small, opts.small, opts.pending, progress, `depth ${opts.small.toLocaleString('en-US')} rows (fill)`);
    await fill(dbs.big, opts.big, opts.pending, progress, `depth ${opts.big.toLocaleString('en-US')} rows (fill)`);
    const fillSeconds = (now() - t0) / 1000;
    // warm-up (prepares the named statements) and the estimate, on the deep
    // table (the slower one, so a block lasts at least minSeconds on both)
    for (const db of [dbs.small, dbs.big]) {
      await prepare(db, 20);
      await claimSerially(db, 20);
    }
    await prepare(dbs.big, 200);
    const est = await claimSerially(dbs.big, 200);
    const first = Math.min(50_000, Math.ceil(((opts.minSeconds * 1.25) / est.seconds) * 200));
    const blocks: DepthBlock[] = [];
    const paired = await interleave(opts.pairs, ['small', 'big'] as const, first, opts.minSeconds, async (side, pair, claims) => {
      const db = dbs[side];
      await prepare(db, claims);
      const label = `depth ${side} pair ${pair + 1}/${opts.pairs}`;
      const r = await claimSerially(db, claims, (i) => progress(label, i, claims));
      const block: DepthBlock = { rows: opts[side], pair, claims, seconds: round(r.seconds), claim: dist(r.claim), complete: dist(r.complete) };
      blocks.push(block);
      return block;
    }, (n, factor) => Math.min(50_000, Math.ceil(n * factor)));
    const sides = paired.results;
    const counted = new Set([...sides.small, ...sides.big]);
    for (const b of blocks) if (!counted.has(b)) b.redone = true;
    for (const db of [dbs.small, dbs.big]) await db.query('TRUNCATE steadytext_queue');
    const s = sides.small.map((b) => b.claim.p50);
    const b = sides.big.map((x) => x.claim.p50);
    return {
      small: opts.small,
      big: opts.big,
      pending: opts.pending,
      claims: paired.size,
      redone: paired.redone,
      pairs: opts.pairs,
      minSeconds: opts.minSeconds,
      fillSeconds: round(fillSeconds, 1),
      blocks,
      smallP50: spread(s),
      bigP50: spread(b),
      ratio: spread(b.map((x, i) => x / s[i])),
    };
  } finally {
    await dbs.small.end();
    await dbs.big.end();
  }
}
