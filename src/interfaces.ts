// Shared types: the worker, the CLI, the client and the engine agree on these.
// Names are the spec's: SteadyText's "PostgreSQL Extension - Async Functions"
// documentation, which this project implements (docs/sql-reference.md).

/** Values of steadytext_queue.function_name. */
export type FunctionName =
  | 'generate'
  | 'generate_json'
  | 'generate_regex'
  | 'generate_choice'
  | 'embed'
  | 'rerank';

export const FUNCTION_NAMES: readonly FunctionName[] = [
  'generate',
  'generate_json',
  'generate_regex',
  'generate_choice',
  'embed',
  'rerank',
];

/** Values of steadytext_queue.status (a CHECK constraint enforces them). */
export type JobStatus = 'pending' | 'processing' | 'completed' | 'failed' | 'cancelled';

export const TERMINAL_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];

/**
 * steadytext_queue.parameters: every SQL argument, defaults filled in, keyed by
 * the SQL argument name.
 */
export interface JobParameters {
  prompt?: string;
  max_tokens?: number;
  use_cache?: boolean;
  seed?: number;
  text_input?: string;
  schema?: unknown;
  pattern?: string;
  choices?: string[];
  query?: string;
  documents?: string[];
  task?: string;
}

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

/** One reranked document, as the rerank job's JSON result lists them (best first). */
export interface RankedDocument {
  document: string;
  score: number;
  /** Position of the document in the `documents` argument. */
  index: number;
}

export const CHANNEL_COMPLETED = 'steadytext_completed';
export const CHANNEL_NEW_JOB = 'steadytext_new_job';
export const CHANNEL_CANCELLED = 'steadytext_cancelled';
