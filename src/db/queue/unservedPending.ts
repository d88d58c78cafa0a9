import type { Queryable } from '../queryable.ts';

export interface UnservedPending {
  function_name: string;
  pending: number;
}

/**
 * Pending requests that no running worker takes: job types every live worker
 * refuses (steadytext_workers.served_functions, written at registration; NULL
 * means every type). Empty when no worker is live at all (that is said
 * elsewhere) or when every pending type has a taker.
 */
export async function unservedPending(db: Queryable): Promise<UnservedPending[]> {
  const r = await db.query<UnservedPending>(
    `WITH live AS (
       -- steadytext_worker_status() says which workers are alive ('running', not 'dead')
       SELECT w.served_functions FROM steadytext_worker_status() s
       JOIN steadytext_workers w ON w.worker_id = s.worker_id
       WHERE s.status = 'running'
     ), pending AS (
       SELECT q.function_name, count(*)::int AS pending FROM steadytext_queue q
       WHERE q.status = 'pending' GROUP BY q.function_name
     )
     SELECT p.function_name, p.pending FROM pending p
     WHERE EXISTS (SELECT 1 FROM live)
       AND NOT EXISTS (SELECT 1 FROM live l WHERE l.served_functions IS NULL OR p.function_name = ANY (l.served_functions))
     ORDER BY p.function_name`,
  );
  return r.rows;
}
