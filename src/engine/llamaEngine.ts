// The llama engine: one loaded model per role (loaded lazily on first use),
// shared by concurrent jobs. Generation: `parallel` sequences spread over
// `contexts` contexts (default one each); a job gets a sequence (cleared before
// every job, no reused KV prefix) and llama.cpp evaluates the busy sequences of
// one context in one batch per step. Embeddings and
// reranking: a pool of single-sequence contexts; one embed(texts) call spreads
// its texts over the free contexts, each text evaluated alone. Measured: a
// job's output is byte-identical alone or beside others (docs/engine.md, Batching).
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import {
  getLlama,
  LlamaGrammarEvaluationState,
  LlamaLogLevel,
  LlamaVocabularyType,
  LlamaText,
  SpecialTokensText,
  TokenBias,
  resolveChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaGrammar,
  type LlamaModel,
  type LlamaRankingContext,
  type Token,
} from 'node-llama-cpp';
import { renderChatPrompt, rerankLayout, templateThinks, type RerankLayout } from './chatTemplate.ts';
import { compileJsonSchema } from './jsonSchemaGrammar.ts';
import { fixFor, MODEL_ROLES, modelIdFor, modelSource, type EngineSettings, type GpuMode, type ModelSource } from './modelSources.ts';
import { choiceGbnf, compileRegex } from './regexGrammar.ts';
import { answerWithoutThinking, checkChoiceOutput, checkJsonOutput, checkRegexOutput, l2Normalise, schemaValidator, validateGenerateOptions } from './outputChecks.ts';
import { ensureTinyModel } from './tinyModels.ts';
import {
  EngineAbortedError,
  EngineError,
  EngineInputError,
  ModelNotFoundError,
  type Engine,
  type GenerateOptions,
  type ModelRole,
  type Refusal,
} from './types.ts';
import type { RankedDocument } from '../interfaces.ts';
import { DEFAULT_RERANK_TASK, functionsOfRole } from '../jobTypes.ts';

/** Largest context a generation/ranking context gets (KV memory grows with it). */
const MAX_CONTEXT_SIZE = 4096;
const llamaPromises = new Map<GpuMode, Promise<Llama>>();

/**
 * The process-wide llama.cpp binding for a device mode: node-llama-cpp's
 * prebuilt binaries, never built from source. 'cuda'/'vulkan' fail when that
 * backend cannot load here; 'auto' falls back to CPU.
 */
export function getEngineLlama(gpu: GpuMode = 'off'): Promise<Llama> {
  let p = llamaPromises.get(gpu);
  if (!p) {
    p = getLlama({ gpu: gpu === 'off' ? false : gpu, build: 'never', logLevel: LlamaLogLevel.error, progressLogs: false }).catch(
      (err: Error) => {
        llamaPromises.delete(gpu);
        throw gpu === 'off'
          ? err
          : new EngineError(`STEADYTEXT_GPU=${gpu}, but node-llama-cpp's ${gpu} prebuilt did not load: ${err.message}`, { cause: err });
      },
    );
    llamaPromises.set(gpu, p);
  }
  return p;
}

/** The CPU binding (the tested default). */
export function getCpuLlama(): Promise<Llama> {
  return getEngineLlama('off');
}

/** The device models run on: 'cpu', or the GPU backend node-llama-cpp loaded ('cuda', 'vulkan', 'metal'). */
export async function engineDevice(gpu: GpuMode): Promise<string> {
  if (gpu === 'off') return 'cpu';
  const llama = await getEngineLlama(gpu);
  return llama.gpu === false ? 'cpu' : llama.gpu;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new EngineAbortedError('aborted');
}

function isAbort(err: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (err instanceof Error && err.name === 'AbortError');
}

/** A fixed-size pool of resources created on demand, handed out one job at a time. */
class Pool<T> {
  private free: T[] = [];
  private all: T[] = [];
  private creating = 0;
  private waiters: Array<(item: T) => void> = [];
  constructor(
    private size: number,
    private create: () => Promise<T>,
  ) {}

  async acquire(): Promise<T> {
    const item = this.free.pop();
    if (item) return item;
    if (this.all.length + this.creating < this.size) {
      this.creating++;
      try {
        const created = await this.create();
        this.all.push(created);
        return created;
      } finally {
        this.creating--;
      }
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.free.push(item);
  }

  items(): T[] {
    return this.all;
  }
}

/** One role's model file: resolves (never downloads unless allowed) and loads it once. */
abstract class RoleModel {
  private modelPromise?: Promise<LlamaModel>;
  protected readonly source: ModelSource;

  constructor(
    readonly role: ModelRole,
    protected readonly settings: EngineSettings,
  ) {
    this.source = modelSource(role, settings);
  }

  modelId(): string {
    return modelIdFor(this.source);
  }

  protected model(): Promise<LlamaModel> {
    this.modelPromise ??= this.load();
    // A failed load is not cached: a later `steadytext models pull` fixes it.
    this.modelPromise.catch(() => (this.modelPromise = undefined));
    return this.modelPromise;
  }

  private async load(): Promise<LlamaModel> {
    const path = await this.resolvePath();
    const llama = await getEngineLlama(this.settings.gpu);
    return llama.loadModel({ modelPath: path, gpuLayers: this.settings.gpu === 'off' ? 0 : 'auto' });
  }

  /**
   * Why this role cannot run here, or undefined when it can: its file is not
   * in the model dir and will not be downloaded (STEADYTEXT_ALLOW_DOWNLOAD is
   * off, or it is a local path).
   */
  unavailable(): string | undefined {
    const s = this.source;
    if (s.kind === 'tiny' || existsSync(s.localPath) || (s.kind === 'hf' && this.settings.allowDownload)) return undefined;
    if (s.kind === 'path') return `the ${this.role} model file ${s.localPath} does not exist (${fixFor(s, this.settings)}), then restart the worker`;
    return `the ${this.role} model ${basename(s.localPath)} is not in ${this.settings.modelDir} (run \`steadytext models pull\`, then restart the worker)`;
  }

  private async resolvePath(): Promise<string> {
    const s = this.source;
    if (s.kind === 'tiny') return ensureTinyModel(this.role, this.settings.modelDir);
    if (existsSync(s.localPath)) return s.localPath;
    if (s.kind === 'hf' && this.settings.allowDownload) {
      const { downloadModel } = await import('./download.ts');
      try {
        return await downloadModel(s, this.settings, { timeoutMs: 30_000 });
      } catch (err) {
        throw new ModelNotFoundError(
          `${this.role} model ${s.reference} is not in ${this.settings.modelDir} and downloading it failed ` +
            `(${(err as Error).message}); run \`steadytext models pull\` where the network is reachable`,
          { cause: err },
        );
      }
    }
    throw new ModelNotFoundError(
      `${this.role} model ${s.reference} is not available at ${s.localPath}: ${fixFor(s, this.settings)}` +
        (s.kind === 'hf' ? ' (or set STEADYTEXT_ALLOW_DOWNLOAD=1 to let the worker download it)' : ''),
    );
  }

  abstract dispose(): Promise<void>;

  protected async disposeModel(): Promise<void> {
    const p = this.modelPromise;
    this.modelPromise = undefined;
    if (p) await (await p.catch(() => undefined))?.dispose();
  }
}

/**
 * Tokens that decode to a NUL byte: SentencePiece's byte-fallback piece
 * `<0x00>`, GPT-2 byte-level BPE's `Ā` (its stand-in for byte 0), or any piece
 * holding U+0000. Tokenizing '\u0000' is not enough: SentencePiece prefixes a
 * space piece, so the byte token never comes back alone.
 */
function nulTokens(model: LlamaModel): Token[] {
  const pieces = model.fileInfo.metadata?.tokenizer?.ggml?.tokens as readonly string[] | undefined;
  const found = new Set<Token>();
  pieces?.forEach((piece, i) => {
    if (piece === '<0x00>' || piece === '\u0100' || piece.includes('\u0000')) found.add(i as Token);
  });
  const direct = model.tokenize('\u0000', true);
  if (direct.length === 1) found.add(direct[0]);
  return [...found];
}

type PromptWrapping =
  | { kind: 'raw'; thinks: false }
  | { kind: 'chat-template'; thinks: boolean; before: string; after: string }
  | { kind: 'chat-wrapper'; thinks: boolean; wrapper: NonNullable<ReturnType<typeof resolveChatWrapper>> };

export interface RenderedPrompt {
  /** `chat-template`: the model's own template; `chat-wrapper`: node-llama-cpp's wrapper for it; `raw`: no template. */
  wrapping: PromptWrapping['kind'];
  /** The model follows the `<think>` convention: thinking is off in the prompt and stripped from plain output. */
  thinks: boolean;
  /** The prompt as the model sees it, special tokens written out. */
  text: string;
  tokens: Token[];
}

export class GenerationModel extends RoleModel {
  /**
   * `contexts` contexts share the `parallel` sequences (round-robin); each context
   * evaluates its busy sequences in one batch per step on its own threads.
   */
  private contexts: Array<Promise<LlamaContext> | undefined> = [];
  /** Sequences handed out per context. */
  private taken: number[] = [];

  /** Sequences of context i: `parallel` split as evenly as possible over `contexts`. */
  private capacity(i: number): number {
    const { parallel, contexts } = this.settings;
    return Math.floor(parallel / contexts) + (i < parallel % contexts ? 1 : 0);
  }

  private context(i: number): Promise<LlamaContext> {
    let p = this.contexts[i];
    if (!p) {
      p = (async () => {
        const model = await this.model();
        return model.createContext({
          // per sequence; node-llama-cpp sizes the KV cache for all of them
          contextSize: Math.min(MAX_CONTEXT_SIZE, model.trainContextSize),
          sequences: this.capacity(i),
          threads: this.settings.threads,
        });
      })();
      p.catch(() => (this.contexts[i] = undefined));
      this.contexts[i] = p;
    }
    return p;
  }

  private pool = new Pool<LlamaContextSequence>(this.settings.parallel, async () => {
    // the context with the most sequences left, so light load spreads over all contexts (cores)
    let best = 0;
    for (let i = 1; i < this.settings.contexts; i++) {
      if (this.capacity(i) - (this.taken[i] ?? 0) > this.capacity(best) - (this.taken[best] ?? 0)) best = i;
    }
    this.taken[best] = (this.taken[best] ?? 0) + 1;
    try {
      return (await this.context(best)).getSequence();
    } catch (err) {
      this.taken[best]--;
      throw err;
    }
  });

  private nulBias?: TokenBias;

  /** Never generate a NUL byte: PostgreSQL text cannot hold it. */
  private noNul(model: LlamaModel): TokenBias {
    if (!this.nulBias) {
      const bias = new TokenBias(model.tokenizer);
      for (const token of nulTokens(model)) bias.set(token, 'never');
      this.nulBias = bias;
    }
    return this.nulBias;
  }

  private wrapping?: Promise<PromptWrapping>;

  /**
   * How prompts reach this model. With a chat template: one user turn and the
   * opened assistant turn, rendered from the model's own template with
   * thinking switched off (`enable_thinking=false`, Qwen3's switch); if that
   * template cannot be rendered, node-llama-cpp's wrapper for the model (Qwen
   * with thoughts discouraged). Without one: the raw prompt after BOS.
   */
  private promptWrapping(model: LlamaModel): Promise<PromptWrapping> {
    this.wrapping ??= (async (): Promise<PromptWrapping> => {
      const template = model.fileInfo.metadata?.tokenizer?.chat_template as string | undefined;
      if (!template) return { kind: 'raw', thinks: false };
      const thinks = templateThinks(template);
      try {
        const parts = renderChatPrompt(template, { bos: model.tokens.bosString ?? undefined, eos: model.tokens.eosString ?? undefined });
        return { kind: 'chat-template', thinks, ...parts };
      } catch {
        // Jinja already failed here: skip node-llama-cpp's own Jinja attempt.
        const wrapper = resolveChatWrapper(model, { noJinja: true, customWrapperSettings: { qwen: { thoughts: 'discourage' } } })!;
        return { kind: 'chat-wrapper', thinks, wrapper };
      }
    })();
    return this.wrapping;
  }

  /** The prompt as the model sees it: text (special tokens written out) and tokens. */
  async renderPrompt(prompt: string): Promise<RenderedPrompt> {
    const model = await this.model();
    return this.render(model, prompt);
  }

  private async render(model: LlamaModel, prompt: string): Promise<RenderedPrompt> {
    const w = await this.promptWrapping(model);
    let text: LlamaText;
    if (w.kind === 'raw') text = LlamaText(prompt);
    else if (w.kind === 'chat-template') text = LlamaText([new SpecialTokensText(w.before), prompt, new SpecialTokensText(w.after)]);
    else {
      text = w.wrapper.generateContextState({
        chatHistory: [
          { type: 'user', text: prompt },
          { type: 'model', response: [] },
        ],
      }).contextText;
    }
    const tokens = text.tokenize(model.tokenizer);
    const bos = model.tokens.bos;
    if (w.kind !== 'chat-wrapper' && bos != null && model.tokens.shouldPrependBosToken && tokens[0] !== bos) tokens.unshift(bos);
    return { wrapping: w.kind, thinks: w.thinks, text: model.detokenize(tokens, true), tokens };
  }

  async complete(
    prompt: string,
    opts: GenerateOptions,
    grammarText?: string,
  ): Promise<{ text: string; stopReason: string }> {
    validateGenerateOptions(opts);
    throwIfAborted(opts.signal);
    const model = await this.model();
    const llama = model.llama;
    const grammar: LlamaGrammar | undefined = grammarText
      ? await llama.createGrammar({ grammar: grammarText })
      : undefined;
    const rendered = await this.render(model, prompt);
    const tokens = rendered.tokens;
    const sequence = await this.pool.acquire();
    try {
      throwIfAborted(opts.signal);
      await sequence.clearHistory();
      const { generated, stopReason } = await this.sample(model, sequence, tokens, opts, grammar);
      throwIfAborted(opts.signal);
      // The whole token sequence decoded at once, with the prompt as context (a
      // SentencePiece tokenizer would otherwise drop the leading space of the
      // first generated token): bytes of one character split over byte-fallback
      // tokens come out as that character.
      const text = model.detokenize(generated, false, tokens.slice(-16));
      // A grammar fixes the output's shape from its first token; only free text can hold a thinking block.
      if (!grammarText && rendered.thinks) return { text: answerWithoutThinking(text, stopReason === 'maxTokens', opts.maxTokens), stopReason };
      return { text, stopReason };
    } catch (err) {
      if (err instanceof EngineError) throw err;
      if (isAbort(err, opts.signal)) throw new EngineAbortedError('generation aborted', { cause: err });
      throw new EngineError(`generation failed: ${(err as Error).message}`, { cause: err });
    } finally {
      await sequence.clearHistory().catch(() => {});
      this.pool.release(sequence);
    }
  }

  /**
   * Samples up to `maxTokens` tokens after the prompt and returns every one of
   * them (the end-of-generation token left out). Not LlamaCompletion: it holds
   * back a token whose own text ends in an incomplete UTF-8 character until a
   * token with clean text follows, and drops what it still holds at
   * `maxTokens`. With byte-fallback tokens (each character of `[α-ω]+` is two
   * or three `<0xNN>` tokens, none clean alone) it returned no text or a
   * character cut short. The sampling itself is LlamaCompletion's: the same
   * input (the model's BOS first, once), temperature 0,
   * seed, grammar, its default repeat penalty over the last 64 tokens but
   * newlines; so plain outputs keep their bytes.
   */
  private async sample(
    model: LlamaModel,
    sequence: LlamaContextSequence,
    prompt: Token[],
    opts: GenerateOptions,
    grammar: LlamaGrammar | undefined,
  ): Promise<{ generated: Token[]; stopReason: 'eogToken' | 'maxTokens' }> {
    // LlamaCompletion's resolveBeginningTokenToPrepend, unless the rendered
    // prompt already starts with that token (render() puts BOS first where
    // the model wants one): the model reads one BOS, as llama-server gives it.
    const vocab = model.vocabularyType;
    const first =
      vocab === LlamaVocabularyType.rwkv || vocab === LlamaVocabularyType.ugm
        ? null
        : vocab === LlamaVocabularyType.wpm || model.tokens.shouldPrependBosToken
          ? model.tokens.bos
          : null;
    const input = first != null && prompt[0] !== first ? [first, ...prompt] : prompt.slice();
    const grammarEvaluationState = grammar ? new LlamaGrammarEvaluationState({ model, grammar }) : undefined;
    const nl = model.tokens.nl;
    const generated: Token[] = [];
    samplerTestSignals.start?.();
    const iterator = sequence.evaluate(input, {
      temperature: 0,
      seed: opts.seed,
      grammarEvaluationState,
      repeatPenalty: { punishTokens: () => generated.slice(-64).filter((t) => t !== nl), maxPunishTokens: 64 },
      tokenBias: this.noNul(model),
      yieldEogToken: true,
    });
    let stopReason: 'eogToken' | 'maxTokens' = 'maxTokens';
    try {
      for await (const token of iterator) {
        samplerTestSignals.token?.();
        throwIfAborted(opts.signal);
        if (model.isEogToken(token)) {
          stopReason = 'eogToken';
          break;
        }
        generated.push(token);
        opts.onProgress?.();
        if (generated.length >= opts.maxTokens) break;
      }
    } finally {
      await iterator.return?.(undefined);
    }
    // Free text stopped by max_tokens may end inside a character: drop the
    // tokens of that character (a grammar's byte budget never lets this happen).
    if (stopReason === 'maxTokens' && !grammar) {
      const partial = (): boolean =>
        generated.length > 0 &&
        model.detokenize([generated[generated.length - 1]]).endsWith('\uFFFD') &&
        model.detokenize(generated, false, prompt.slice(-16)).endsWith('\uFFFD');
      while (partial()) generated.pop();
    }
    return { generated, stopReason };
  }

  async dispose(): Promise<void> {
    const contexts = this.contexts;
    this.contexts = [];
    this.taken = [];
    this.wrapping = undefined;
    for (const p of contexts) if (p) await (await p.catch(() => undefined))?.dispose();
    await this.disposeModel();
  }
}


/**
 * Test signals (as River's services expose them): `start` is called when
 * sampling starts (the grammar compiled and set up), `token` as each token is
 * sampled, end of generation included, so a test can time the sampler token
 * by token (test/structured/sampler-work.test.ts).
 */
export const samplerTestSignals: { start?: () => void; token?: () => void } = {};

export class EmbeddingModel extends RoleModel {
  /** Tokens an embedding context holds; a text must be shorter (node-llama-cpp's rule). */
  private contextSize = 0;
  private pool = new Pool<LlamaEmbeddingContext>(this.settings.parallel, async () => {
    const model = await this.model();
    this.contextSize = Math.min(MAX_CONTEXT_SIZE, model.trainContextSize);
    return model.createEmbeddingContext({
      contextSize: this.contextSize,
      threads: this.settings.threads,
    });
  });

  /**
   * Refuses the call (EngineInputError) when a text does not fit the model's
   * context, before any text is embedded: a batch holding such a text costs
   * only its tokenization, and the worker splits it (docs/reliability.md).
   * The message names that text's own length only.
   */
  private checkLengths(ctx: LlamaEmbeddingContext, texts: string[]): void {
    for (const text of texts) {
      const n = ctx.calculateInputLength(text);
      if (n >= this.contextSize) {
        throw new EngineInputError(
          `the text is too long for the embedding model: ${n} tokens, at most ${this.contextSize - 1} fit its context`,
        );
      }
    }
  }

  async embed(texts: string[], signal?: AbortSignal): Promise<number[][]> {
    if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) {
      throw new EngineInputError('embed expects an array of strings');
    }
    if (texts.some((t) => t.length === 0)) throw new EngineInputError('cannot embed an empty text');
    throwIfAborted(signal);
    if (texts.length === 0) return [];
    // Each text is evaluated alone in a single-sequence context (the addon returns
    // only sequence 0's pooled vector, so one decode cannot yield several); the
    // texts of one call run concurrently on up to `parallel` contexts. Each runner
    // holds one context at a time, so concurrent calls cannot deadlock. The first
    // context checks every text's length before any is embedded.
    const out: number[][] = new Array(texts.length);
    let next = 0;
    let failed = false;
    const runner = async (held?: LlamaEmbeddingContext): Promise<void> => {
      const ctx = held ?? (await this.pool.acquire());
      try {
        while (!failed && next < texts.length) {
          throwIfAborted(signal);
          const i = next++;
          out[i] = l2Normalise((await ctx.getEmbeddingFor(texts[i])).vector, `the embedding of a ${texts[i].length}-character text`);
        }
      } catch (err) {
        failed = true;
        throw err;
      } finally {
        this.pool.release(ctx);
      }
    };
    try {
      const first = await this.pool.acquire();
      try {
        this.checkLengths(first, texts);
      } catch (err) {
        this.pool.release(first);
        throw err;
      }
      const more = Array.from({ length: Math.min(texts.length, this.settings.parallel) - 1 }, () => runner());
      const results = await Promise.allSettled([runner(first), ...more]);
      const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (rejected) throw rejected.reason;
      return out;
    } catch (err) {
      if (err instanceof EngineError) throw err;
      if (isAbort(err, signal)) throw new EngineAbortedError('embedding aborted', { cause: err });
      throw new EngineError(`embedding failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async dispose(): Promise<void> {
    for (const ctx of this.pool.items()) await ctx.dispose();
    await this.disposeModel();
  }
}

export class RerankingModel extends RoleModel {
  private layoutFor(model: LlamaModel): RerankLayout {
    return rerankLayout(model.fileInfo.metadata?.tokenizer?.['chat_template.rerank'] as string | undefined, DEFAULT_RERANK_TASK);
  }

  private pool = new Pool<LlamaRankingContext>(this.settings.parallel, async () => {
    const model = await this.model();
    return model.createRankingContext({
      contextSize: Math.min(MAX_CONTEXT_SIZE, model.trainContextSize),
      threads: this.settings.threads,
      template: this.layoutFor(model).template,
    });
  });

  /**
   * The input one (query, document) pair is scored on, as text: the model's
   * rerank template with the task as its instruction (Qwen3-Reranker's layout).
   */
  async formatRerankInput(query: string, document: string, task: string): Promise<string> {
    const model = await this.model();
    const layout = this.layoutFor(model);
    const template = layout.template ?? (model.fileInfo.metadata?.tokenizer?.['chat_template.rerank'] as string | undefined)
      ?.replaceAll('{query}', '{{query}}').replaceAll('{document}', '{{document}}');
    if (!template) throw new EngineError('this reranker has no rerank template; node-llama-cpp joins query and document with its separator tokens');
    return template.replace('{{query}}', layout.query(task, query)).replace('{{document}}', document);
  }

  async rerank(
    query: string,
    documents: string[],
    task: string,
    signal?: AbortSignal,
    onProgress?: () => void,
  ): Promise<RankedDocument[]> {
    if (typeof query !== 'string') throw new EngineInputError('rerank expects a query string');
    if (!Array.isArray(documents) || documents.some((d) => typeof d !== 'string')) {
      throw new EngineInputError('rerank expects documents as an array of strings');
    }
    if (documents.length === 0) return [];
    throwIfAborted(signal);
    const fullQuery = this.layoutFor(await this.model()).query(task, query);
    const ctx = await this.pool.acquire();
    try {
      const scores: number[] = [];
      for (const doc of documents) {
        throwIfAborted(signal);
        scores.push(await ctx.rank(fullQuery, doc));
        onProgress?.();
      }
      return documents
        .map((document, index) => ({ document, score: scores[index], index }))
        .sort((a, b) => b.score - a.score || a.index - b.index);
    } catch (err) {
      if (err instanceof EngineError) throw err;
      if (isAbort(err, signal)) throw new EngineAbortedError('rerank aborted', { cause: err });
      // node-llama-cpp's words for a query and document longer than the context:
      // the same input is refused every time.
      if (/exceeds? the context size|too long to fit into the context/i.test((err as Error).message)) {
        throw new EngineInputError(`rerank: a document is too long for the reranking model: ${(err as Error).message}`, { cause: err });
      }
      throw new EngineError(`rerank failed: ${(err as Error).message}`, { cause: err });
    } finally {
      this.pool.release(ctx);
    }
  }

  async dispose(): Promise<void> {
    for (const ctx of this.pool.items()) await ctx.dispose();
    await this.disposeModel();
  }
}

export class LlamaEngine implements Engine {
  readonly generation: GenerationModel;
  readonly embedding: EmbeddingModel;
  readonly reranking: RerankingModel;

  constructor(
    readonly settings: EngineSettings,
    /** 'cpu' or the GPU backend in use (engineDevice()); undefined is CPU. */
    readonly device?: string,
  ) {
    this.generation = new GenerationModel('generation', settings);
    this.embedding = new EmbeddingModel('embedding', settings);
    this.reranking = new RerankingModel('reranking', settings);
  }

  /**
   * The job types of roles whose model is missing here (RoleModel.unavailable):
   * a worker leaves them pending, for a worker that has the model, instead of
   * failing every one of them (src/worker/engine.ts engineRefusals).
   */
  refusals(): Refusal[] {
    return MODEL_ROLES.flatMap((role) => {
      const reason = this[role].unavailable();
      return reason ? functionsOfRole(role).map((fn) => ({ function: fn, reason })) : [];
    });
  }

  /** Number of CPU threads each context uses (STEADYTEXT_THREADS). */
  get threads(): number {
    return this.settings.threads;
  }

  /**
   * The model's id; on a GPU with the device appended (`...@cuda`), so CPU and
   * GPU results never share cache rows. `device` comes from engineDevice()
   * (loadEngine resolves it before the engine serves).
   */
  modelId(role: ModelRole): string {
    const id = this[role].modelId();
    return this.device && this.device !== 'cpu' ? `${id}@${this.device}` : id;
  }

  async generate(prompt: string, opts: GenerateOptions): Promise<string> {
    return (await this.generation.complete(prompt, opts)).text;
  }

  async generateJson(prompt: string, schema: unknown, opts: GenerateOptions): Promise<unknown> {
    validateGenerateOptions(opts);
    const { gbnf } = compileJsonSchema(schema, opts.maxTokens);
    const validate = schemaValidator(schema);
    const { text, stopReason } = await this.generation.complete(prompt, opts, gbnf);
    return checkJsonOutput(text, validate, stopReason === 'maxTokens', opts.maxTokens);
  }

  async generateRegex(prompt: string, pattern: string, opts: GenerateOptions): Promise<string> {
    if (typeof pattern !== 'string') throw new EngineInputError('pattern must be a string');
    validateGenerateOptions(opts);
    const { gbnf, matcher } = compileRegex(pattern, opts.maxTokens);
    const { text, stopReason } = await this.generation.complete(prompt, opts, gbnf);
    return checkRegexOutput(text, matcher, stopReason === 'maxTokens', opts.maxTokens);
  }

  async generateChoice(prompt: string, choices: string[], opts: GenerateOptions): Promise<string> {
    const gbnf = choiceGbnf(choices);
    validateGenerateOptions(opts);
    const { text, stopReason } = await this.generation.complete(prompt, opts, gbnf);
    return checkChoiceOutput(text, choices, stopReason === 'maxTokens', opts.maxTokens);
  }

  embed(texts: string[], opts?: { signal?: AbortSignal }): Promise<number[][]> {
    return this.embedding.embed(texts, opts?.signal);
  }

  rerank(
    query: string,
    documents: string[],
    task: string,
    opts?: { seed?: number; signal?: AbortSignal; onProgress?: () => void },
  ): Promise<RankedDocument[]> {
    return this.reranking.rerank(query, documents, task, opts?.signal, opts?.onProgress);
  }

  async dispose(): Promise<void> {
    await this.generation.dispose();
    await this.embedding.dispose();
    await this.reranking.dispose();
  }
}
