import type { Queryable } from '../queryable.ts';

/**
 * Pipeline rows held by dead workers (no heartbeat, stopped, gone) and rows a
 * session held while their worker gave them back, back to pending; how many.
 * `self`: the worker running it (its own rows are never taken for a late
 * heartbeat); `restartOf`: a worker id whose earlier process this one
 * replaces (all of that id's rows are taken back).
 */
export async function reclaimPipelineRows(db: Queryable, o: { self?: string; restartOf?: string } = {}): Promise<number> {
  const r = await db.query<{ n: string }>(`SELECT _steadytext_pipeline_reclaim($1, $2)::text AS n`, [o.self ?? null, o.restartOf ?? null]);
  return Number(r.rows[0]?.n ?? 0);
}
