// steadytext_queue_stats(), read by `steadytext status` and the dashboard.
import type { Queryable } from '../queryable.ts';

export interface QueueStatsRow {
  function_name: string;
  status: string;
  count: number;
  oldest_pending_age_seconds: number | null;
  avg_processing_seconds: number | null;
  p95_processing_seconds: number | null;
}

/** steadytext_queue_stats(): one row per (function_name, status). */
export async function queueStats(db: Queryable): Promise<QueueStatsRow[]> {
  const r = await db.query<QueueStatsRow>(
    `SELECT function_name, status, count::int AS count, oldest_pending_age_seconds,
            avg_processing_seconds, p95_processing_seconds
     FROM steadytext_queue_stats()`,
  );
  return r.rows;
}
