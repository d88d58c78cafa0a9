// The engine interface: the only thing the worker knows about inference.
// Nothing outside src/engine/ imports node-llama-cpp; a remote inference
// server could sit behind this same interface.
import type { FunctionName, ModelRole, RankedDocument } from '../interfaces.ts';

export type { ModelRole };

/** A job type an engine will not serve, and why (the worker leaves such jobs pending for one that does). */
export interface Refusal {
  function: FunctionName;
  reason: string;
}

export interface GenerateOptions {
  /** Upper bound on generated tokens (1..4096). */
  maxTokens: number;
  /** Seed applied to decoding; output depends only on (model, prompt, maxTokens, seed). */
  seed: number;
  /** Aborts the call (job cancelled or timed out). */
  signal?: AbortSignal;
  /**
   * Called each time the engine produces a token of this call's output. The
   * worker uses it to tell a job whose own output outlasts its time limit from
   * a stalled engine (docs/reliability.md). Optional: an engine that cannot
   * see its output grow (one answer per HTTP request) never calls it.
   */
  onProgress?: () => void;
}

export interface Engine {
  /** Stable id per role, part of every cache key (e.g. a file name + size + hash prefix). */
  modelId(role: ModelRole): string;
  generate(prompt: string, opts: GenerateOptions): Promise<string>;
  /** Output parses as JSON and validates (ajv) against `schema`. */
  generateJson(prompt: string, schema: unknown, opts: GenerateOptions): Promise<unknown>;
  /** Output fully matches `pattern`. */
  generateRegex(prompt: string, pattern: string, opts: GenerateOptions): Promise<string>;
  /** Output is exactly one of `choices`. */
  generateChoice(prompt: string, choices: string[], opts: GenerateOptions): Promise<string>;
  /**
   * One L2-normalised vector per text, all of the same dimension. A text the
   * model cannot take (longer than its context) refuses the whole call with
   * EngineInputError; the worker then splits its batch (docs/reliability.md).
   */
  embed(texts: string[], opts?: { signal?: AbortSignal }): Promise<number[][]>;
  /** Documents with relevance scores, best first. */
  rerank(
    query: string,
    documents: string[],
    task: string,
    opts?: { seed?: number; signal?: AbortSignal; onProgress?: () => void },
  ): Promise<RankedDocument[]>;
  /** Frees models and contexts. */
  dispose(): Promise<void>;
}

/** A module named by STEADYTEXT_ENGINE_MODULE exports this (tests, benchmarks, remote engines). */
export type EngineFactory = () => Promise<Engine>;

export interface EngineErrorOptions extends ErrorOptions {
  /** See EngineError.publicMessage. */
  publicMessage?: string;
}

/** Base class of every error the engine raises on purpose. */
export class EngineError extends Error {
  /**
   * What a job's `error` may show the tenant who asked, where `message` holds
   * more that only the operator should read (an inference server's URL, its
   * full answer). The worker stores this and logs `message`. Unset: `message`
   * is fit for both.
   */
  readonly publicMessage?: string;

  constructor(message: string, options?: EngineErrorOptions) {
    const { publicMessage, ...rest } = options ?? {};
    super(message, rest);
    this.name = new.target.name;
    if (publicMessage !== undefined) this.publicMessage = publicMessage;
  }
}

/** The model file for a role is absent and could not be fetched. */
export class ModelNotFoundError extends EngineError {}

/**
 * The model hub (HF_ENDPOINT, default huggingface.co) cannot be reached: the
 * machine is offline, or the host does not answer. Trying the next file would
 * say the same again.
 */
export class HubUnreachableError extends EngineError {
  constructor(
    readonly host: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * The engine refuses this input, and would refuse it again: bad arguments
 * (unsupported regex, invalid schema, empty text), a text longer than the
 * model's context, an inference server's 4xx or its own "input too large".
 * The worker fails such a job at once, without a retry; a grouped call (an
 * embed batch) refused this way is split until each job gets its own answer.
 * Anything else an engine throws is taken for a fault of the machine (the
 * server, memory, a timeout) and retried with backoff.
 */
export class EngineInputError extends EngineError {}

/** The call was aborted through its signal. */
export class EngineAbortedError extends EngineError {}
