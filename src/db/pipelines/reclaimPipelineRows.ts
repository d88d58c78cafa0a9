import type { Queryable } from '../queryable.ts';

/** Pipeline rows held by dead workers (no heartbeat, stopped, gone) back to pending; how many. */
export async function reclaimPipelineRows(db: Queryable): Promise<number> {
  const r = await db.query<{ n: string }>(`SELECT _steadytext_pipeline_reclaim()::text AS n`);
  return Number(r.rows[0]?.n ?? 0);
}
