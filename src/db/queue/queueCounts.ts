import type { Queryable } from '../queryable.ts';

export interface QueueCount {
  function_name: string;
  status: string;
  count: number;
}

/**
 * Rows of steadytext_queue per (function_name, status): one grouped count,
 * cheaper than steadytext_queue_stats() (no percentiles), for metrics scrapes.
 */
export async function queueCounts(db: Queryable): Promise<QueueCount[]> {
  const r = await db.query<QueueCount>(
    `SELECT function_name, status, count(*)::int AS count
     FROM steadytext_queue GROUP BY function_name, status`,
  );
  return r.rows;
}
