// The TypeScript client: `new SteadyText(pool)`. Enqueues through the SQL
// functions (so every validation is the SQL's), waits on NOTIFY
// steadytext_completed (never busy polling) and hands back typed results.
import type pg from 'pg';
import {
  TERMINAL_STATUSES,
  type FunctionName,
  type JobStatus,
} from '../interfaces.ts';
import { inSchema } from '../sqlNames.ts';
import { CompletionHub } from './completionHub.ts';
import { CompletionStream, type CompletionsOptions } from './completionStream.ts';
import { AbortError, JobCancelledError, JobFailedError, JobNotFoundError, TimeoutError } from './errors.ts';
import { parseResult, type AnyResult, type JsonValue, type ResultOf } from './results.ts';

export type { CompletionPayload, FunctionName, JobStatus, RankedDocument } from '../interfaces.ts';
export { FUNCTION_NAMES, TERMINAL_STATUSES } from '../interfaces.ts';
export { AbortError, JobCancelledError, JobFailedError, JobNotFoundError, SteadyTextError, TimeoutError } from './errors.ts';
export { parseResult, type AnyResult, type JsonValue, type ResultOf } from './results.ts';
export { CompletionStream, type CompletionsOptions } from './completionStream.ts';

declare const functionBrand: unique symbol;
/**
 * A request id (a UUID string). The enqueue methods brand it with the function
 * it runs, so `result(id)` knows its type; any string is accepted where an id is.
 */
export type RequestId<F extends FunctionName = FunctionName> = string & { readonly [functionBrand]?: F };

/** Options every enqueue takes. Omitted options take the SQL function's default. */
export interface EnqueueOptions {
  /** Serve from / fill steadytext_cache (SQL default true). */
  useCache?: boolean;
  /** Higher runs first (SQL default 0). */
  priority?: number;
}

export interface GenerateOptions extends EnqueueOptions {
  /** SQL default 512. */
  maxTokens?: number;
  /** SQL default 42. */
  seed?: number;
}

export type EmbedOptions = EnqueueOptions;

export interface RerankOptions extends EnqueueOptions {
  /** The instruction given to the reranker (SQL default: the web-search one). */
  task?: string;
  seed?: number;
}

export interface WaitOptions {
  /** Seconds to wait before TimeoutError (default 30, as steadytext_get_async_result; Infinity: no limit). */
  timeout?: number;
  signal?: AbortSignal;
}

/** One request as steadytext_check_async sees it, the result parsed. */
export interface JobState<F extends FunctionName = FunctionName> {
  requestId: RequestId<F>;
  /** null when not_found. */
  functionName: F | null;
  status: JobStatus | 'not_found';
  /** The parsed result, when completed. */
  result: ResultOf<F> | null;
  /** steadytext_queue.result as stored (text). */
  rawResult: string | null;
  error: string | null;
  batchId: string | null;
  priority: number | null;
  createdAt: Date | null;
  startedAt: Date | null;
  completedAt: Date | null;
}

export interface SteadyTextOptions {
  /** Schema pg_steadytext is installed in (default: found through the connection's search_path). */
  schema?: string;
  /**
   * While waits are in flight, how often to re-read the unfinished rows anyway, in
   * case a notification was lost (a dropped LISTEN connection). Default 10 s.
   */
  recheckSeconds?: number;
}

type SqlArg = [name: string, value: unknown, type: string];

export class SteadyText {
  private readonly hub: CompletionHub;
  private readonly streams = new Set<CompletionStream>();
  private readonly prefix: string;
  private readonly recheckMs: number;

  /**
   * `pool` is any pg.Pool on a database holding pg_steadytext. Waits hold one of
   * its connections for LISTEN (one for all the waits of this instance, given
   * back when none is in flight), and each completions() stream one more.
   */
  constructor(
    readonly pool: pg.Pool,
    opts: SteadyTextOptions = {},
  ) {
    this.prefix = inSchema(opts.schema);
    this.recheckMs = (opts.recheckSeconds ?? 10) * 1000;
    this.hub = new CompletionHub(pool);
  }

  // ---------------------------------------------------------------- enqueue

  /** steadytext_generate_async: resolves to the request id. */
  generateAsync(prompt: string, opts: GenerateOptions = {}): Promise<RequestId<'generate'>> {
    return this.enqueue('steadytext_generate_async', [['prompt', prompt, 'text'], ...generateArgs(opts)]);
  }

  /** steadytext_embed_async. */
  embedAsync(text: string, opts: EmbedOptions = {}): Promise<RequestId<'embed'>> {
    return this.enqueue('steadytext_embed_async', [['text_input', text, 'text'], ...commonArgs(opts)]);
  }

  /** steadytext_generate_json_async: the result is a JSON value matching `schema`. */
  generateJsonAsync(prompt: string, schema: object, opts: GenerateOptions = {}): Promise<RequestId<'generate_json'>> {
    return this.enqueue('steadytext_generate_json_async', [
      ['prompt', prompt, 'text'],
      ['schema', JSON.stringify(schema), 'jsonb'],
      ...generateArgs(opts),
    ]);
  }

  /** steadytext_generate_regex_async: the result matches `pattern` in full. */
  generateRegexAsync(prompt: string, pattern: string, opts: GenerateOptions = {}): Promise<RequestId<'generate_regex'>> {
    return this.enqueue('steadytext_generate_regex_async', [
      ['prompt', prompt, 'text'],
      ['pattern', pattern, 'text'],
      ...generateArgs(opts),
    ]);
  }

  /** steadytext_generate_choice_async: the result is one of `choices`. */
  generateChoiceAsync(prompt: string, choices: string[], opts: GenerateOptions = {}): Promise<RequestId<'generate_choice'>> {
    return this.enqueue('steadytext_generate_choice_async', [
      ['prompt', prompt, 'text'],
      ['choices', choices, 'text[]'],
      ...generateArgs(opts),
    ]);
  }

  /** steadytext_generate_batch_async: one id per prompt, in order. */
  generateBatchAsync(prompts: string[], opts: GenerateOptions = {}): Promise<RequestId<'generate'>[]> {
    return this.enqueue('steadytext_generate_batch_async', [['prompts', prompts, 'text[]'], ...generateArgs(opts)]);
  }

  /** steadytext_embed_batch_async: one id per text, in order. */
  embedBatchAsync(texts: string[], opts: EmbedOptions = {}): Promise<RequestId<'embed'>[]> {
    return this.enqueue('steadytext_embed_batch_async', [['texts', texts, 'text[]'], ...commonArgs(opts)]);
  }

  /** steadytext_rerank_async: the result is the documents ranked best first. */
  rerankAsync(query: string, documents: string[], opts: RerankOptions = {}): Promise<RequestId<'rerank'>> {
    return this.enqueue('steadytext_rerank_async', [
      ['query', query, 'text'],
      ['documents', documents, 'text[]'],
      ['task', opts.task, 'text'],
      ...commonArgs(opts),
      ['seed', opts.seed, 'integer'],
    ]);
  }

  // ---------------------------------------------------------------- results

  /** The request's state now (status `not_found` for an unknown id). Never waits. */
  async check<F extends FunctionName>(requestId: RequestId<F>): Promise<JobState<F>> {
    const [state] = await this.checkMany([requestId]);
    return state as JobState<F>;
  }

  /** States of many requests, in the given order. */
  async checkMany(requestIds: string[]): Promise<JobState[]> {
    const t = this.prefix;
    const r = await this.pool.query<Row>(
      `SELECT c.request_id::text AS request_id, c.status, c.result, c.error,
              q.function_name, q.batch_id::text AS batch_id, q.priority,
              q.created_at, q.started_at, q.completed_at
       FROM ${t}steadytext_check_async_batch($1::uuid[]) WITH ORDINALITY AS c
       LEFT JOIN ${t}steadytext_queue AS q ON q.request_id = c.request_id
       ORDER BY c.ordinality`,
      [requestIds],
    );
    return r.rows.map(toState);
  }

  /**
   * Waits for the request to end and resolves to its typed result: string
   * (generate, generate_regex, generate_choice), a JSON value (generate_json),
   * number[] (embed), RankedDocument[] (rerank). Rejects with JobFailedError
   * (carrying the job's error), JobCancelledError, JobNotFoundError or
   * TimeoutError.
   */
  result<F extends FunctionName>(requestId: RequestId<F>, opts?: WaitOptions): Promise<ResultOf<F>>;
  async result(requestId: string, opts: WaitOptions = {}): Promise<AnyResult> {
    for await (const state of this.settled([requestId], opts)) return valueOf(state);
    throw new JobNotFoundError(requestId); // unreachable: settled yields every id once
  }

  /** result() for many ids at once; resolves in the given order, rejects on the first that does not complete. */
  results<F extends FunctionName>(requestIds: RequestId<F>[], opts?: WaitOptions): Promise<ResultOf<F>[]>;
  async results(requestIds: string[], opts: WaitOptions = {}): Promise<AnyResult[]> {
    const values = new Map<string, AnyResult>();
    for await (const state of this.settled(requestIds, opts)) values.set(state.requestId, valueOf(state));
    return requestIds.map((id) => values.get(id)!);
  }

  /**
   * Yields each request's final state once, as it ends (completed, failed,
   * cancelled, or not_found), ids already finished first. Throws TimeoutError
   * (its `requestIds` are the unfinished ones) when the timeout passes.
   */
  async *settled(requestIds: string[], opts: WaitOptions = {}): AsyncGenerator<JobState, void, undefined> {
    const timeout = opts.timeout ?? 30;
    const remaining = new Set(requestIds);
    if (remaining.size === 0) return;
    const deadline = Date.now() + timeout * 1000;
    let woken = new Set<string>();
    let checkAll = false;
    let wakeUp: (() => void) | null = null;
    const unwatch = await this.hub.watch(remaining, (id) => {
      if (id === null) checkAll = true;
      else woken.add(id);
      wakeUp?.();
    });
    const onAbort = () => wakeUp?.();
    opts.signal?.addEventListener('abort', onAbort);
    try {
      let toCheck = [...remaining];
      for (;;) {
        if (toCheck.length > 0) {
          for (const state of await this.checkMany(toCheck)) {
            if (!remaining.has(state.requestId) || !isFinal(state.status)) continue;
            remaining.delete(state.requestId);
            yield state;
          }
        }
        if (remaining.size === 0) return;
        if (opts.signal?.aborted) throw new AbortError(opts.signal.reason);
        if (woken.size === 0 && !checkAll) {
          const left = deadline - Date.now();
          if (left <= 0) throw new TimeoutError([...remaining], timeout);
          let timer: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            wakeUp = resolve;
            timer = setTimeout(() => {
              checkAll = true; // the periodic re-read, or the last look before the timeout
              resolve();
            }, Math.min(left, this.recheckMs));
          });
          clearTimeout(timer);
          wakeUp = null;
        }
        toCheck = checkAll ? [...remaining] : [...woken].filter((id) => remaining.has(id));
        woken = new Set();
        checkAll = false;
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      unwatch();
    }
  }

  /** steadytext_cancel_async: true if the request was pending/processing and is now cancelled. */
  async cancel(requestId: string): Promise<boolean> {
    const r = await this.pool.query<{ v: boolean }>(`SELECT ${this.prefix}steadytext_cancel_async($1::uuid) AS v`, [requestId]);
    return r.rows[0].v;
  }

  /**
   * Every request this client's login may read that reaches a final state, as
   * `{request_id, function, status, batch_id?}`, from NOTIFY
   * steadytext_completed on a connection of its own. Each notification is
   * checked against its row first (anyone may NOTIFY): a forged or replayed one
   * yields nothing. Breaking out of the loop gives the connection back.
   * `await stream.ready` before enqueueing to be sure to see those completions.
   */
  completions(opts: CompletionsOptions = {}): CompletionStream {
    const stream = new CompletionStream(this.pool, opts, (s) => this.streams.delete(s), `${this.prefix}steadytext_queue`);
    this.streams.add(stream);
    return stream;
  }

  // ---------------------------------------------------------- conveniences

  /** Enqueues and waits: the generated text. */
  async generate(prompt: string, opts: GenerateOptions & WaitOptions = {}): Promise<string> {
    return this.result(await this.generateAsync(prompt, opts), opts);
  }

  /** Enqueues (as a batch) and waits: one L2-normalised vector per text. */
  embed(text: string, opts?: EmbedOptions & WaitOptions): Promise<number[]>;
  embed(texts: string[], opts?: EmbedOptions & WaitOptions): Promise<number[][]>;
  async embed(input: string | string[], opts: EmbedOptions & WaitOptions = {}): Promise<number[] | number[][]> {
    const ids = await this.embedBatchAsync(typeof input === 'string' ? [input] : input, opts);
    const vectors = await this.results(ids, opts);
    return typeof input === 'string' ? vectors[0] : vectors;
  }

  /** Stops every completions() stream and gives back the LISTEN connection. */
  async close(): Promise<void> {
    await Promise.all([...this.streams].map((s) => s.close()));
    await this.hub.close();
  }

  private async enqueue<T>(fn: string, args: SqlArg[]): Promise<T> {
    const given = args.filter(([, value]) => value !== undefined);
    const list = given.map(([name, , type], i) => `${name} => $${i + 1}::${type}`).join(', ');
    const r = await this.pool.query<{ v: T }>(
      `SELECT ${this.prefix}${fn}(${list}) AS v`,
      given.map(([, value]) => value),
    );
    return r.rows[0].v;
  }
}

function commonArgs(o: EnqueueOptions): SqlArg[] {
  return [
    ['use_cache', o.useCache, 'boolean'],
    ['priority', o.priority, 'integer'],
  ];
}

function generateArgs(o: GenerateOptions): SqlArg[] {
  return [['max_tokens', o.maxTokens, 'integer'], ['seed', o.seed, 'integer'], ...commonArgs(o)];
}

interface Row {
  request_id: string;
  status: JobStatus | 'not_found';
  result: string | null;
  error: string | null;
  function_name: FunctionName | null;
  batch_id: string | null;
  priority: number | null;
  created_at: Date | null;
  started_at: Date | null;
  completed_at: Date | null;
}

function toState(r: Row): JobState {
  return {
    requestId: r.request_id,
    functionName: r.function_name,
    status: r.status,
    result: r.status === 'completed' && r.result !== null && r.function_name ? parseResult(r.function_name, r.result) : null,
    rawResult: r.result,
    error: r.error,
    batchId: r.batch_id,
    priority: r.priority,
    createdAt: r.created_at,
    startedAt: r.started_at,
    completedAt: r.completed_at,
  };
}

function isFinal(status: JobState['status']): boolean {
  return status === 'not_found' || (TERMINAL_STATUSES as readonly string[]).includes(status);
}

/** A final state as result() gives it: the value, or the named error. */
export function valueOf<F extends FunctionName>(state: JobState<F>): ResultOf<F> {
  switch (state.status) {
    case 'completed':
      return state.result as ResultOf<F>;
    case 'failed':
      throw new JobFailedError(state.requestId, state.error);
    case 'cancelled':
      throw new JobCancelledError(state.requestId);
    case 'not_found':
      throw new JobNotFoundError(state.requestId);
    default:
      throw new Error(`request ${state.requestId} is still ${state.status}`);
  }
}
