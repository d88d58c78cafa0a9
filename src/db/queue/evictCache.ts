import type { Queryable } from '../queryable.ts';

/** Runs the SQL side's cache eviction (size/age limits live there). Returns rows evicted. */
export async function evictCache(db: Queryable): Promise<number> {
  const r = await db.query<{ n: string | null }>(`SELECT steadytext_cache_evict() AS n`);
  return Number(r.rows[0].n ?? 0);
}
