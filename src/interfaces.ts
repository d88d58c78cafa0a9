// Shared types: the worker, the CLI, the client and the engine agree on these.
// Names are the spec's: SteadyText's "PostgreSQL Extension - Async Functions"
// documentation, which this project implements (docs/sql-reference.md).

// The job types (function_name, arguments, model role, result format) are
// defined once, in src/jobTypes.ts.
import type { FunctionName, JobParameters } from './jobTypes.ts';

export {
  FUNCTION_NAMES,
  type FunctionName,
  type JobParameters,
  type ModelRole,
  type RankedDocument,
} from './jobTypes.ts';

/** Values of steadytext_queue.status (a CHECK constraint enforces them). */
export type JobStatus = 'pending' | 'processing' | 'completed' | 'failed' | 'cancelled';

export const TERMINAL_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];

/** A job as the worker claims it. */
export interface Job {
  request_id: string;
  function_name: FunctionName;
  parameters: JobParameters;
  priority: number;
  retry_count: number;
  max_retries: number;
  attempt: number;
  batch_id: string | null;
  cache_key: string | null;
  timeout_seconds: number | null;
}

/** Payload of NOTIFY steadytext_completed. */
export interface CompletionPayload {
  request_id: string;
  function: FunctionName;
  status: 'completed' | 'failed' | 'cancelled';
  batch_id?: string;
}

export const CHANNEL_COMPLETED = 'steadytext_completed';
export const CHANNEL_NEW_JOB = 'steadytext_new_job';
export const CHANNEL_CANCELLED = 'steadytext_cancelled';
/** NOTIFY when a pipeline gets new work (payload: the pipeline id; docs/pipelines.md). */
export const CHANNEL_PIPELINE = 'steadytext_pipeline';
