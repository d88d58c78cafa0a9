// The engine interface: the only thing the worker knows about inference.
// Nothing outside src/engine/ imports node-llama-cpp; a remote inference
// server could sit behind this same interface.
import type { FunctionName, RankedDocument } from '../interfaces.ts';

export type ModelRole = 'generation' | 'embedding' | 'reranking';

/** The job types each role's model answers. */
export const ROLE_FUNCTIONS: Record<ModelRole, readonly FunctionName[]> = {
  generation: ['generate', 'generate_json', 'generate_regex', 'generate_choice'],
  embedding: ['embed'],
  reranking: ['rerank'],
};

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
  /** One L2-normalised vector per text, all of the same dimension. */
  embed(texts: string[], opts?: { signal?: AbortSignal }): Promise<number[][]>;
  /** Documents with relevance scores, best first. */
  rerank(
    query: string,
    documents: string[],
    task: string,
    opts?: { seed?: number; signal?: AbortSignal },
  ): Promise<RankedDocument[]>;
  /** Frees models and contexts. */
  dispose(): Promise<void>;
}

/** A module named by STEADYTEXT_ENGINE_MODULE exports this (tests, benchmarks, remote engines). */
export type EngineFactory = () => Promise<Engine>;

/** Base class of every error the engine raises on purpose. */
export class EngineError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
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

/** Bad arguments the engine cannot honour (unsupported regex, invalid schema...). */
export class EngineInputError extends EngineError {}

/** The call was aborted through its signal. */
export class EngineAbortedError extends EngineError {}
