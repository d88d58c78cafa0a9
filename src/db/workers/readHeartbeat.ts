import type { Queryable } from '../queryable.ts';

export interface HeartbeatRow {
  last_heartbeat: Date;
  /** now() - last_heartbeat on the database's clock. */
  age_seconds: number;
  status: string;
}

/**
 * The worker's row as the database sees it, or null when the row is gone.
 * Doubles as the health check's database probe.
 */
export async function readHeartbeat(db: Queryable, workerId: string): Promise<HeartbeatRow | null> {
  const r = await db.query<HeartbeatRow>(
    `SELECT last_heartbeat, extract(epoch FROM now() - last_heartbeat)::float8 AS age_seconds, status
     FROM steadytext_workers WHERE worker_id = $1`,
    [workerId],
  );
  return r.rows[0] ?? null;
}
