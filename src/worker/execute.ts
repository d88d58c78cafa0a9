// function_name → engine call → the text stored in steadytext_queue.result
// (each job type's result format: src/jobTypes.ts).
import { EngineInputError, type Engine } from '../engine/types.ts';
import type { FunctionName, Job } from '../interfaces.ts';
import {
  DEFAULT_MAX_TOKENS,
  DEFAULT_RERANK_TASK,
  DEFAULT_SEED,
  isFunctionName,
  RESULT_FORMATS,
  writeResult,
  type JsonValue,
  type ResultOf,
} from '../jobTypes.ts';

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

function generateOptions(job: Job, signal: AbortSignal, onProgress?: () => void) {
  return {
    maxTokens: job.parameters.max_tokens ?? DEFAULT_MAX_TOKENS,
    seed: job.parameters.seed ?? DEFAULT_SEED,
    signal,
    onProgress,
  };
}

/** pgvector's text form, `[0.1,0.2,...]`. */
export const vectorText = RESULT_FORMATS.vector.write;

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

/** What runs one job of a type on the engine: the job type's value (see RUN). */
type Run<F extends FunctionName> = (
  engine: Engine,
  job: Job,
  signal: AbortSignal,
  onProgress?: () => void,
) => Promise<ResultOf<F>>;

/** The engine call of each job type (the compiler wants one per entry of src/jobTypes.ts). */
const RUN: { [F in FunctionName]: Run<F> } = {
  generate: (engine, job, signal, onProgress) =>
    engine.generate(text(job, 'prompt'), generateOptions(job, signal, onProgress)),
  generate_json: async (engine, job, signal, onProgress) => {
    const { schema } = job.parameters;
    if (schema === undefined || schema === null) throw new JobInputError('generate_json: parameters.schema is missing');
    return (await engine.generateJson(text(job, 'prompt'), schema, generateOptions(job, signal, onProgress))) as JsonValue;
  },
  generate_regex: (engine, job, signal, onProgress) =>
    engine.generateRegex(text(job, 'prompt'), text(job, 'pattern'), generateOptions(job, signal, onProgress)),
  generate_choice: (engine, job, signal, onProgress) =>
    engine.generateChoice(text(job, 'prompt'), texts(job, 'choices'), generateOptions(job, signal, onProgress)),
  embed: async (engine, job, signal) => {
    const [v] = await engine.embed([text(job, 'text_input')], { signal });
    return v;
  },
  rerank: (engine, job, signal, onProgress) =>
    engine.rerank(text(job, 'query'), texts(job, 'documents'), job.parameters.task ?? DEFAULT_RERANK_TASK, {
      seed: job.parameters.seed ?? DEFAULT_SEED,
      signal,
      onProgress,
    }),
};

/**
 * Runs one job on the engine; the result as steadytext_queue.result stores it.
 * `onProgress` is called as the engine produces the job's output (tokens,
 * ranked documents), where the engine can tell.
 */
export async function executeJob(engine: Engine, job: Job, signal: AbortSignal, onProgress?: () => void): Promise<string> {
  checkCommonParameters(job);
  const fn: unknown = job.function_name;
  if (!isFunctionName(fn)) throw new JobInputError(`unknown function_name '${String(fn)}'`);
  return writeResult(fn, await (RUN[fn] as Run<typeof fn>)(engine, job, signal, onProgress));
}

/** One embed job's outcome in executeEmbedBatch: its vector, or why not. */
export type EmbedOutcome = { vector: number[] } | { error: unknown };

/** A signal that aborts once every one of `signals` has (a call shared by several jobs). */
function allAborted(signals: AbortSignal[]): { signal: AbortSignal; dispose(): void } {
  const c = new AbortController();
  const check = () => {
    if (signals.every((s) => s.aborted)) c.abort(signals[0].reason);
  };
  for (const s of signals) s.addEventListener('abort', check);
  check();
  return { signal: c.signal, dispose: () => signals.forEach((s) => s.removeEventListener('abort', check)) };
}

/**
 * Several embed jobs in one engine.embed call (one forward pass over the
 * batch instead of one per text), reporting each job's outcome through
 * `report(i, outcome)` as soon as it is known.
 *
 * A job's outcome depends only on its own input. When the engine refuses the
 * call's input (EngineInputError: a text longer than the model's context, a
 * server's 4xx), the batch is halved and each half sent again, down to single
 * jobs: the others get their vectors, the refused text its own refusal, with
 * no attempt lost by anyone. Any other error is a fault of the machine (the
 * server unreachable, a 5xx, memory): every job of that call gets it and the
 * retry rule. `signals[i]` is job i's own; the call aborts only once all of
 * its jobs have, and a job aborted meanwhile is left out of later calls.
 */
export async function executeEmbedBatch(
  engine: Engine,
  jobs: Job[],
  signals: AbortSignal[],
  report: (i: number, outcome: EmbedOutcome) => void,
  log: (line: string) => void = () => {},
): Promise<void> {
  const inputs: string[] = [];
  const sound: number[] = [];
  jobs.forEach((job, i) => {
    try {
      checkCommonParameters(job);
      inputs[i] = text(job, 'text_input');
      sound.push(i);
    } catch (error) {
      report(i, { error });
    }
  });
  const run = async (group: number[]): Promise<void> => {
    const live = group.filter((i) => !signals[i].aborted);
    if (live.length === 0) return;
    const shared = allAborted(live.map((i) => signals[i]));
    let refused = false;
    try {
      const vectors = await engine.embed(live.map((i) => inputs[i]), { signal: shared.signal });
      if (vectors.length !== live.length) {
        throw new Error(`engine.embed returned ${vectors.length} vectors for ${live.length} texts`);
      }
      live.forEach((i, k) => report(i, { vector: vectors[k] }));
    } catch (error) {
      if (live.length > 1 && error instanceof EngineInputError) refused = true;
      else for (const i of live) report(i, { error });
    } finally {
      shared.dispose();
    }
    if (refused) {
      log(`the engine refused the input of an embed call of ${live.length} texts; splitting it`);
      const half = Math.ceil(live.length / 2);
      await run(live.slice(0, half));
      await run(live.slice(half));
    }
  };
  await run(sound);
}
