// function_name → engine call → the text stored in steadytext_queue.result
// (formats: docs/architecture.md, "Result formats").
import type { Engine } from '../engine/types.ts';
import type { Job } from '../interfaces.ts';

export const DEFAULT_MAX_TOKENS = 512;
export const DEFAULT_SEED = 42;
export const DEFAULT_RERANK_TASK = 'Given a web search query, retrieve relevant passages that answer the query';

/** A job whose parameters cannot be run as they are; retrying will not help. */
export class JobInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JobInputError';
  }
}

function text(job: Job, name: 'prompt' | 'text_input' | 'query' | 'pattern'): string {
  const v = job.parameters[name];
  if (typeof v !== 'string') throw new JobInputError(`${job.function_name}: parameters.${name} must be text`);
  return v;
}

function texts(job: Job, name: 'choices' | 'documents'): string[] {
  const v = job.parameters[name];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw new JobInputError(`${job.function_name}: parameters.${name} must be an array of text`);
  }
  return v;
}

function generateOptions(job: Job, signal: AbortSignal) {
  return {
    maxTokens: job.parameters.max_tokens ?? DEFAULT_MAX_TOKENS,
    seed: job.parameters.seed ?? DEFAULT_SEED,
    signal,
  };
}

/** pgvector's text form, `[0.1,0.2,...]`. */
export function vectorText(v: number[]): string {
  return `[${v.join(',')}]`;
}

/**
 * Parameters every function shares, checked before any engine call: a row the
 * public functions would have refused (written some other way) fails on its
 * own with a clear error instead of reaching the completion statement.
 */
export function checkCommonParameters(job: Job): void {
  const v = (job.parameters as Record<string, unknown> | null)?.use_cache;
  if (v !== undefined && typeof v !== 'boolean') {
    throw new JobInputError(`${job.function_name}: parameters.use_cache must be a boolean, not ${JSON.stringify(v)}`);
  }
}

/** True when the job can join an embed batch (its parameters are sound). */
export function batchableEmbed(job: Job): boolean {
  try {
    checkCommonParameters(job);
    text(job, 'text_input');
    return true;
  } catch {
    return false;
  }
}

/** Runs one job on the engine; the result as steadytext_queue.result stores it. */
export async function executeJob(engine: Engine, job: Job, signal: AbortSignal): Promise<string> {
  checkCommonParameters(job);
  const p = job.parameters;
  switch (job.function_name) {
    case 'generate':
      return engine.generate(text(job, 'prompt'), generateOptions(job, signal));
    case 'generate_json': {
      if (p.schema === undefined || p.schema === null) throw new JobInputError('generate_json: parameters.schema is missing');
      const doc = await engine.generateJson(text(job, 'prompt'), p.schema, generateOptions(job, signal));
      return JSON.stringify(doc);
    }
    case 'generate_regex':
      return engine.generateRegex(text(job, 'prompt'), text(job, 'pattern'), generateOptions(job, signal));
    case 'generate_choice':
      return engine.generateChoice(text(job, 'prompt'), texts(job, 'choices'), generateOptions(job, signal));
    case 'embed': {
      const [v] = await engine.embed([text(job, 'text_input')], { signal });
      return vectorText(v);
    }
    case 'rerank': {
      const ranked = await engine.rerank(text(job, 'query'), texts(job, 'documents'), p.task ?? DEFAULT_RERANK_TASK, {
        seed: p.seed ?? DEFAULT_SEED,
        signal,
      });
      return JSON.stringify(ranked);
    }
    default:
      throw new JobInputError(`unknown function_name '${String(job.function_name)}'`);
  }
}

/**
 * Several embed jobs in one engine.embed call (one forward pass over the
 * batch instead of one per text). Returns one result per job, in order.
 * Only jobs that pass batchableEmbed belong in a batch (one bad row would
 * otherwise fail the others).
 */
export async function executeEmbedBatch(engine: Engine, jobs: Job[], signal: AbortSignal): Promise<string[]> {
  jobs.forEach(checkCommonParameters);
  const inputs = jobs.map((j) => text(j, 'text_input'));
  const vectors = await engine.embed(inputs, { signal });
  if (vectors.length !== jobs.length) {
    throw new Error(`engine.embed returned ${vectors.length} vectors for ${jobs.length} texts`);
  }
  return vectors.map(vectorText);
}
