import type { Queryable } from '../db/queryable.ts';

/**
 * When the server this connection reaches last started
 * (pg_postmaster_start_time(), as text): another value than before means a
 * restart, a crash recovery or a failover happened in between, and commits
 * made without waiting for the disk may be gone.
 */
export async function serverStartTime(db: Queryable): Promise<string> {
  const r = await db.query<{ t: string }>('SELECT pg_postmaster_start_time()::text AS t');
  return r.rows[0].t;
}
