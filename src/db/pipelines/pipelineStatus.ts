// steadytext_pipeline_status(name) (docs/pipelines.md), read by `steadytext
// pipelines`, `steadytext status`, the dashboard and the worker's /metrics.
import type { Queryable } from '../queryable.ts';

/** One row of steadytext_pipeline_status(): counts as numbers, created_at as ISO 8601. */
export interface PipelineStatusRow {
  name: string;
  source: string;
  input: string;
  destination: string;
  function_name: string;
  model_id: string | null;
  priority: number;
  paused: boolean;
  rows: number;
  done: number;
  pending: number;
  processing: number;
  failed: number;
  stale: number;
  /** 100 * done / rows (0..100). */
  coverage: number;
  /** Age of the oldest pending change; null when none. */
  lag_seconds: number | null;
  /** Rows written per second over the last minute. */
  throughput: number;
  backfilling: boolean;
  /** {"model id": rows holding its values} */
  models: Record<string, number>;
  last_error: string | null;
  created_at: string;
}

/** The pipelines the caller may see (one by name with `name`), by name. */
export async function pipelineStatus(db: Queryable, name: string | null = null): Promise<PipelineStatusRow[]> {
  const r = await db.query<PipelineStatusRow>(
    `SELECT name, source, input, destination, function_name, model_id, priority, paused,
            "rows"::float8 AS "rows", done::float8 AS done, pending::float8 AS pending,
            processing::float8 AS processing, failed::float8 AS failed, stale::float8 AS stale,
            coverage, lag_seconds, throughput, backfilling, models, last_error,
            to_json(created_at) #>> '{}' AS created_at
     FROM steadytext_pipeline_status($1::text)
     ORDER BY name`,
    [name],
  );
  return r.rows;
}

/**
 * pipelineStatus(), or none where the schema predates pipelines (pg_steadytext
 * before 1.5.0 has no steadytext_pipeline_status) or the role may not call it:
 * for the readers that show pipelines beside other things (`steadytext
 * status`, the dashboard), which go on without them.
 */
export async function pipelineStatusIfAny(db: Queryable): Promise<PipelineStatusRow[]> {
  try {
    return await pipelineStatus(db);
  } catch (err) {
    if (isNoPipelinesError(err) || (err as { code?: string }).code === '42501') return [];
    throw err;
  }
}

/** True when the error says the database's pg_steadytext has no pipeline functions (a schema older than 1.5.0). */
export function isNoPipelinesError(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  return e?.code === '42883' && /steadytext_pipeline_/.test(e.message ?? '');
}
