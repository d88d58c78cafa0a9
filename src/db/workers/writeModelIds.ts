import type { Queryable } from '../queryable.ts';

/**
 * Publishes the engine's model id per role ('generation', 'embedding',
 * 'reranking') through _steadytext_publish_model_ids, which upserts
 * 'model.<role>' in steadytext_config, where the enqueue functions read them
 * to compute cache keys. A worker may write nothing else there (nor read it).
 * `ids` holds only the roles the engine serves.
 */
export async function writeModelIds(db: Queryable, ids: Partial<Record<string, string>>): Promise<void> {
  const published = Object.fromEntries(Object.entries(ids).filter(([, id]) => id !== undefined));
  await db.query(`SELECT _steadytext_publish_model_ids($1::jsonb)`, [JSON.stringify(published)]);
}
