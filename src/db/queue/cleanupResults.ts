// Result retention: deletes old terminal rows of steadytext_queue through
// steadytext_cleanup_results(), one bounded batch per statement (each its own
// transaction), until a batch comes back short.
import type { Queryable } from '../queryable.ts';

export const TERMINAL_STATUSES = ['completed', 'failed', 'cancelled'] as const;

export interface CleanupOptions {
  /** Rows whose completed_at is older than this many milliseconds go. */
  olderThanMs: number;
  /** Default: every terminal status. */
  statuses?: readonly string[];
  /** Rows per statement (default 10000, at most 100000). */
  batchSize?: number;
  /** Checked between batches: true ends the loop early (worker shutdown). */
  shouldStop?: () => boolean;
}

export interface CleanupResult {
  deleted: number;
  /** Statements run, each deleting at most batchSize rows. */
  batches: number[];
}

export async function cleanupResults(db: Queryable, opts: CleanupOptions): Promise<CleanupResult> {
  const batchSize = opts.batchSize ?? 10_000;
  const statuses = [...(opts.statuses ?? TERMINAL_STATUSES)];
  const batches: number[] = [];
  for (;;) {
    const r = await db.query<{ n: string }>(
      `SELECT steadytext_cleanup_results($1::double precision * interval '1 millisecond', $2::text[], $3::integer) AS n`,
      [opts.olderThanMs, statuses, batchSize],
    );
    const n = Number(r.rows[0].n);
    batches.push(n);
    if (n < batchSize || opts.shouldStop?.()) break;
  }
  return { deleted: batches.reduce((a, b) => a + b, 0), batches };
}
