import type { Queryable } from './queryable.ts';

/**
 * Publishes the engine's model id per role in steadytext_config
 * ('model.generation', 'model.embedding', 'model.reranking'), where the enqueue
 * functions read them to compute cache keys. `ids` holds only the roles the
 * engine serves.
 */
export async function writeModelIds(db: Queryable, ids: Partial<Record<string, string>>): Promise<void> {
  const roles = Object.keys(ids).filter((r) => ids[r] !== undefined);
  await db.query(
    `INSERT INTO steadytext_config (key, value, updated_at)
     SELECT 'model.' || role, to_jsonb(id), now() FROM unnest($1::text[], $2::text[]) AS t(role, id)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
     WHERE steadytext_config.value IS DISTINCT FROM excluded.value`,
    [roles, roles.map((r) => ids[r]!)],
  );
}
