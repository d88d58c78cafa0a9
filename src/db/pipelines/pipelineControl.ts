// The pipeline controls a user runs from the shell (`steadytext pipelines
// pause|resume|retry|rerun <name>`), each one call of its SQL function
// (docs/pipelines.md): every check, and the caller's rights, are the SQL's.
import type { Queryable } from '../queryable.ts';

/** steadytext_pipeline_pause(name): changes are still recorded, nothing is computed. */
export async function pausePipeline(db: Queryable, name: string): Promise<void> {
  await db.query(`SELECT steadytext_pipeline_pause($1::text)`, [name]);
}

/** steadytext_pipeline_resume(name). */
export async function resumePipeline(db: Queryable, name: string): Promise<void> {
  await db.query(`SELECT steadytext_pipeline_resume($1::text)`, [name]);
}

/** steadytext_pipeline_retry(name): failed rows back to pending; how many. */
export async function retryPipeline(db: Queryable, name: string): Promise<number> {
  const r = await db.query<{ n: number }>(`SELECT steadytext_pipeline_retry($1::text)::float8 AS n`, [name]);
  return r.rows[0].n;
}

/** steadytext_pipeline_rerun(name): recompute every row in the background. */
export async function rerunPipeline(db: Queryable, name: string): Promise<void> {
  await db.query(`SELECT steadytext_pipeline_rerun($1::text)`, [name]);
}
