// Runs one pipeline batch on the engine, in one engine slot: embed rows in
// ONE engine.embed call (executeEmbedBatch, which splits a call the engine
// refuses for one text's sake), the generate types one row after another
// (executeJob). Rows with a cached result or a NULL input never reach the
// engine. Says what became of each row; writing it is recordBatch's.
import { EngineInputError, type Engine } from '../../engine/types.ts';
import { writeResult } from '../../jobTypes.ts';
import { executeEmbedBatch, executeJob, JobInputError } from '../execute.ts';
import { outgrewItsTime, Shutdown, TimedOut, unstorableText } from '../heldJob.ts';
import { rowJob, type PipelineBatch } from './batch.ts';

/** What became of one row on the engine. */
export type RowOutcome =
  /** Its result text (null: the destination becomes NULL). */
  | { kind: 'result'; result: string | null }
  /** Its embedding, written as numbers (a batch whose claim said `vectors`). */
  | { kind: 'vector'; vector: number[] }
  /** The engine refused its input (or its result cannot be stored): the row fails, alone. */
  | { kind: 'error'; error: string }
  /** A fault of the machine (engine down, timeout of a stalled call): the row goes back to pending, an attempt counted. */
  | { kind: 'fault'; error: string }
  /** Not run: the worker stops, or the batch gave its slot to a queue job. Back to pending, no attempt counted. */
  | { kind: 'left' };

export interface BatchRun {
  outcomes: RowOutcome[];
  /** Set when the pipeline cannot run on this model at all (vectors of a size the destination cannot hold). */
  refusal?: string;
}

export interface RunBatchOptions {
  engine: Engine;
  /** The time limit of one engine call (the worker's --timeout). */
  timeoutSeconds: number;
  /** Asked before each generate row after the first: true gives the slot up there (a queue job is waiting). */
  yieldNow(): boolean;
  log(line: string): void;
}

/** What a job's failure means for its row. */
function classify(err: unknown): RowOutcome {
  if (err instanceof Shutdown) return { kind: 'left' };
  const message = err instanceof Error ? err.message || err.name : String(err);
  // Where the engine says what the tenant may see (an inference server's
  // answer without its URL), that is what the failure table shows.
  const publicMessage = (err as { publicMessage?: unknown } | null)?.publicMessage;
  const shown = typeof publicMessage === 'string' && publicMessage !== '' ? publicMessage : message;
  if (err instanceof EngineInputError || err instanceof JobInputError) return { kind: 'error', error: shown };
  if (err instanceof TimedOut && err.ownWork) return { kind: 'error', error: shown };
  return { kind: 'fault', error: shown };
}

/** A result text PostgreSQL cannot hold fails its row instead of the batch's write. */
function resultOutcome(result: string | null): RowOutcome {
  const unstorable = result === null ? null : unstorableText(result);
  return unstorable ? { kind: 'error', error: `could not store the result: ${unstorable}` } : { kind: 'result', result };
}

/**
 * A signal for one engine call: aborts with the batch's reason (Shutdown), or
 * with TimedOut once `seconds` pass.
 */
function callSignal(batch: PipelineBatch, seconds: number, progress?: { startedAt: number; firstOutputAt?: number; lastOutputAt?: number }) {
  const timer = new AbortController();
  const t = setTimeout(
    () => timer.abort(new TimedOut(seconds, progress ? outgrewItsTime(progress, seconds) : false)),
    Math.min(seconds * 1000, 2 ** 31 - 1),
  );
  return { signal: AbortSignal.any([batch.controller.signal, timer.signal]), dispose: () => clearTimeout(t) };
}

/** Settles like `p`, or rejects with the signal's reason as soon as it aborts (an engine that ignores its signal frees the slot anyway). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Rows that need no engine call: a cached result, or a NULL input. */
function withoutEngine(batch: PipelineBatch): (RowOutcome | undefined)[] {
  return batch.rows.map((row) =>
    row.input === null ? { kind: 'result', result: null } : row.cached !== null ? resultOutcome(row.cached) : undefined,
  );
}

async function runEmbed(batch: PipelineBatch, o: RunBatchOptions): Promise<RowOutcome[]> {
  const outcomes = withoutEngine(batch);
  const todo = batch.rows.flatMap((row, i) => (outcomes[i] === undefined ? [i] : []));
  if (todo.length > 0) {
    const call = callSignal(batch, o.timeoutSeconds);
    try {
      await raceAbort(
        executeEmbedBatch(
          o.engine,
          todo.map((i) => rowJob(batch, batch.rows[i])),
          todo.map(() => call.signal),
          (k, outcome) => {
            // An engine error after the signal fired is the abort's echo: the abort's reason says why.
            outcomes[todo[k]] = !('vector' in outcome)
              ? classify(call.signal.aborted ? call.signal.reason : outcome.error)
              : batch.vectors
                ? { kind: 'vector', vector: outcome.vector }
                : resultOutcome(writeResult('embed', outcome.vector));
          },
          o.log,
        ),
        call.signal,
      );
    } catch (err) {
      for (const i of todo) outcomes[i] ??= classify(err);
    } finally {
      call.dispose();
    }
  }
  return outcomes.map((x) => x ?? { kind: 'left' });
}

async function runGenerate(batch: PipelineBatch, o: RunBatchOptions): Promise<RowOutcome[]> {
  const outcomes = withoutEngine(batch);
  let ran = false;
  let stop = false;
  for (const [i, row] of batch.rows.entries()) {
    if (outcomes[i] !== undefined) continue;
    if (stop || batch.controller.signal.aborted || (ran && o.yieldNow())) {
      outcomes[i] = { kind: 'left' };
      continue;
    }
    ran = true;
    const progress: { startedAt: number; firstOutputAt?: number; lastOutputAt?: number } = { startedAt: performance.now() };
    const call = callSignal(batch, o.timeoutSeconds, progress);
    try {
      const p = executeJob(o.engine, rowJob(batch, row), call.signal, () => {
        progress.lastOutputAt = performance.now();
        progress.firstOutputAt ??= progress.lastOutputAt;
      });
      outcomes[i] = resultOutcome(await raceAbort(p, call.signal));
    } catch (err) {
      outcomes[i] = classify(call.signal.aborted ? call.signal.reason : err);
      // A fault of the machine would fail the next rows too: they go back untried.
      if (outcomes[i]!.kind !== 'error') stop = true;
    } finally {
      call.dispose();
    }
  }
  return outcomes.map((x) => x ?? { kind: 'left' });
}

/** The embedding's size as its result text holds it (`[0.1,...]`). */
function vectorLength(text: string): number {
  return text.replace(/^\[|\]$/g, '').trim() === '' ? 0 : text.split(',').length;
}

/** An embedding's size, from its vector or its result text; null for none. */
function embeddingSize(x: RowOutcome): number | null {
  if (x.kind === 'vector') return x.vector.length;
  return x.kind === 'result' && x.result !== null ? vectorLength(x.result) : null;
}

/** Runs the batch on the engine; resolves when its engine time is over (never rejects). */
export async function runBatch(batch: PipelineBatch, o: RunBatchOptions): Promise<BatchRun> {
  if (batch.functionName !== 'embed') return { outcomes: await runGenerate(batch, o) };
  let outcomes = await runEmbed(batch, o);
  // one write's vectors are of one size; an engine that mixed sizes gets its text written
  if (new Set(outcomes.flatMap((x) => (x.kind === 'vector' ? [x.vector.length] : []))).size > 1) {
    outcomes = outcomes.map((x) => (x.kind === 'vector' ? resultOutcome(writeResult('embed', x.vector)) : x));
  }
  if (batch.dimensions !== null) {
    for (const x of outcomes) {
      const n = embeddingSize(x);
      if (n === null) continue;
      if (n === batch.dimensions) continue;
      return {
        outcomes,
        refusal:
          `the embedding model ${batch.modelId} gives vectors of ${n} dimensions, but the destination of pipeline ` +
          `'${batch.name}' holds ${batch.dimensions}: change the destination column to ${n} dimensions (or serve an ` +
          `embedding model of ${batch.dimensions} dimensions), then run steadytext_pipeline_resume('${batch.name}')`,
      };
    }
  }
  return { outcomes };
}
