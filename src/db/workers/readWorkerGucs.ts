import type { Queryable } from '../queryable.ts';

/**
 * The steadytext.worker_* GUCs (ALTER SYSTEM / ALTER DATABASE SET), NULL where
 * unset. `names` are passed as parameters, never spliced into the SQL.
 */
export async function readWorkerGucs(db: Queryable, names: readonly string[]): Promise<Record<string, string | null>> {
  const r = await db.query<{ name: string; value: string | null }>(
    `SELECT n AS name, nullif(pg_catalog.current_setting(n, true), '') AS value FROM pg_catalog.unnest($1::text[]) AS n`,
    [names],
  );
  return Object.fromEntries(r.rows.map((row) => [row.name, row.value]));
}
