// steadytext_pipeline_failures(name) (docs/pipelines.md): a pipeline's failed
// rows and why, read by `steadytext pipelines <name>`.
import type { Queryable } from '../queryable.ts';

export interface PipelineFailureRow {
  pipeline: string;
  /** The source row's primary key as a JSON array, e.g. [42]. */
  row_key: unknown[];
  error: string | null;
  attempts: number;
  failed_at: string | null;
}

/** The most recent failed rows of one pipeline (every pipeline's with null), newest first; `limit` null: all. */
export async function pipelineFailures(db: Queryable, name: string | null, limit: number | null = null): Promise<PipelineFailureRow[]> {
  const r = await db.query<PipelineFailureRow>(
    `SELECT pipeline, row_key, error, attempts, to_json(failed_at) #>> '{}' AS failed_at
     FROM steadytext_pipeline_failures($1::text)
     ORDER BY failed_at DESC NULLS LAST, row_key::text
     LIMIT $2`,
    [name, limit],
  );
  return r.rows;
}
