// Inference servers behind the Engine interface. Each role (generation,
// embedding, reranking) can go to its own server, in one of four dialects:
//   llama-server  llama.cpp's server: the model's chat template rendered once by
//                 /apply-template, then /completion with a GBNF `grammar`;
//                 /v1/embeddings, /v1/rerank
//   openai        OpenAI-compatible servers (vLLM, SGLang): /v1/chat/completions
//                 with `response_format` (JSON) and vLLM's `structured_outputs`
//                 (regex, choice), /v1/embeddings, /v1/rerank (Jina/Cohere shape)
//   ollama        /api/generate through the model's template (`format`: a JSON
//                 schema only), /v1/embeddings; no rerank endpoint
//   tei           Hugging Face text-embeddings-inference: /v1/embeddings, /rerank
// A generation prompt reaches a server's model as it reaches the local engine's:
// one user turn of the model's chat template, thinking switched off.
// Results are checked exactly as the local engine checks its own (JSON parsed
// and validated against the schema, regex fully matched, choice one of the
// choices); the grammars sent are the ones the local engine compiles.
import { PROMPT_MARK, splitAtPrompt, templateThinks } from './chatTemplate.ts';
import { HttpClient, type HttpClientOptions } from './httpClient.ts';
import { MODEL_ROLES } from './modelSources.ts';
import { compileJsonSchema } from './jsonSchemaGrammar.ts';
import { choiceGbnf, compileRegex } from './regexGrammar.ts';
import { answerWithoutThinking, checkChoiceOutput, checkJsonOutput, checkRegexOutput, l2Normalise, schemaValidator, validateGenerateOptions } from './outputChecks.ts';
import {
  EngineAbortedError,
  EngineError,
  EngineInputError,
  type Engine,
  type GenerateOptions,
  type ModelRole,
  type Refusal,
} from './types.ts';
import type { FunctionName, RankedDocument } from '../interfaces.ts';
import { DEFAULT_RERANK_TASK, functionsOfRole } from '../jobTypes.ts';

export type HttpDialect = 'llama-server' | 'openai' | 'ollama' | 'tei';
export const HTTP_DIALECTS: readonly HttpDialect[] = ['llama-server', 'openai', 'ollama', 'tei'];

/** One role's server. */
export interface HttpBackend extends Omit<HttpClientOptions, 'label'> {
  dialect: HttpDialect;
  /** Model name sent with each request and looked for in the server's model list; default: the one it lists. */
  model?: string;
  /** Texts per embeddings request (a larger embed call is split). */
  embedBatchSize: number;
}

export type HttpBackends = Partial<Record<ModelRole, HttpBackend>>;

/**
 * Why `dialect` cannot serve `fn`, or undefined when it can. The worker logs
 * these at start and does not claim jobs of such a type: they stay pending
 * for a worker that serves them. A direct engine call of such a type fails
 * at once (EngineInputError, not retried) with this text.
 */
export function refusal(dialect: HttpDialect, fn: FunctionName): string | undefined {
  if (dialect === 'tei' && functionsOfRole('generation').includes(fn)) {
    return 'text-embeddings-inference (tei) serves only embeddings and reranking';
  }
  if (dialect === 'ollama' && (fn === 'generate_regex' || fn === 'generate_choice')) {
    return `Ollama cannot constrain ${fn}: its \`format\` accepts only a JSON schema; serve ${fn} from llama-server, vLLM or the local engine`;
  }
  if (dialect === 'ollama' && fn === 'rerank') {
    return 'Ollama has no rerank endpoint; serve rerank from llama-server (--rerank), vLLM, TEI or the local engine';
  }
  return undefined;
}

/** The job types `dialect` serves for `role`. */
export function servedFunctions(dialect: HttpDialect, role: ModelRole): FunctionName[] {
  return functionsOfRole(role).filter((fn) => refusal(dialect, fn) === undefined);
}

/** The server as the operator's errors name it: dialect and URL. */
function label(b: HttpBackend): string {
  return `${b.dialect} at ${b.url}`;
}

/** The server as a job's error names it to tenants: role and dialect, no address. */
function publicLabel(role: ModelRole, b: HttpBackend): string {
  return `the ${role} server (${b.dialect})`;
}

function permanentFailure(dialect: HttpDialect) {
  return (status: number, text: string): string | undefined => {
    // llama-server parses every completion into a chat message and answers 500
    // when the model's bytes are not valid UTF-8 (a model that emits raw bytes,
    // such as the tiny test model, unconstrained), on /completion and on its
    // OpenAI-compatible /v1/chat/completions alike. The same request fails the
    // same way every time.
    if ((dialect === 'llama-server' || dialect === 'openai') && status === 500 && /produced output that does not match the expected/i.test(text)) {
      return 'llama-server refused output that is not valid UTF-8 text; retrying the same greedy request gives the same bytes';
    }
    return undefined;
  };
}

/**
 * llama-server answers 500 to an embedding input longer than its physical
 * batch (`-ub`; "input (N tokens) is too large to process. increase the
 * physical batch size"): that input is refused every time, the others of the
 * request are not at fault (also when reached with the openai dialect).
 * Longer than its context, it answers 400, an EngineInputError anyway.
 */
function inputRefusal(dialect: HttpDialect) {
  return (status: number, text: string): boolean =>
    (dialect === 'llama-server' || dialect === 'openai') && status === 500 && /^input \(\d+ tokens\) is too large to process/.test(text);
}

/** The model names a server lists: /v1/models (llama-server, openai, ollama) or /info (tei). */
export async function listModels(client: HttpClient, dialect: HttpDialect, signal?: AbortSignal): Promise<string[]> {
  if (dialect === 'tei') {
    const info = (await client.json('GET', '/info', undefined, signal)) as { model_id?: unknown };
    return typeof info.model_id === 'string' ? [info.model_id] : [];
  }
  const res = (await client.json('GET', '/v1/models', undefined, signal)) as { data?: Array<{ id?: unknown }> };
  return (res.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === 'string');
}

/** A path-like GGUF name (llama-server lists the file it loaded) without its directories. */
function reportedName(name: string): string {
  return /\.gguf$/i.test(name) ? name.replace(/^.*[\\/]/, '') : name;
}

function normalise(vector: unknown, n: number): number[] {
  if (!Array.isArray(vector) || vector.length === 0 || vector.some((x) => typeof x !== 'number')) {
    throw new EngineError(`embedding ${n} in the server's answer is not an array of numbers`);
  }
  return l2Normalise(vector as number[], `embedding ${n}`);
}

/**
 * llama.cpp's own ChatML template (`CHATML_TEMPLATE_SRC` in common/chat.cpp),
 * which llama-server uses, and lists in /props, when the model has none.
 */
const LLAMA_CPP_FALLBACK_TEMPLATE =
  "{%- for message in messages -%}\n" +
  "  {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}\n" +
  '{%- endfor -%}\n' +
  '{%- if add_generation_prompt -%}\n' +
  "  {{- '<|im_start|>assistant\n' -}}\n" +
  '{%- endif -%}';

/**
 * How a generation prompt reaches the server's model; `kind` is part of the
 * model id, so results of one shape are never served as the other's.
 *   chat  one user turn of the model's chat template, thinking switched off
 *         (`enable_thinking: false`). llama-server: rendered by the server once,
 *         around a marker (`before` / `after`); openai, ollama: by the server
 *         for every request.
 *   raw   the prompt as it is: a llama-server model without a chat template
 *         (as the local engine does for such a model).
 */
interface PromptShape {
  kind: 'chat' | 'raw';
  before: string;
  after: string;
  /** Strip a thinking block that opens plain output (the template follows the `<think>` convention, or is not known here). */
  thinks: boolean;
}

interface Completion {
  text: string;
  /** True when the server stopped at the token limit. */
  truncated: boolean;
}

type Constraint =
  | { kind: 'json'; schema: unknown; gbnf: string }
  | { kind: 'regex'; pattern: string; gbnf: string }
  | { kind: 'choice'; choices: string[]; gbnf: string };

/** One role served by one server. */
class RoleServer {
  readonly client: HttpClient;
  /** The model name sent in requests, and the one in the model id. */
  model = '';
  /** Generation: how prompts reach the model (set by connect). */
  shape: PromptShape = { kind: 'raw', before: '', after: '', thinks: false };

  constructor(
    readonly role: ModelRole,
    readonly backend: HttpBackend,
  ) {
    this.client = new HttpClient({ ...backend, label: label(backend), publicLabel: publicLabel(role, backend) }, permanentFailure(backend.dialect), inputRefusal(backend.dialect));
  }

  /** An answer that is not what was asked for, found while running a job: the tenant's text names no address. */
  private badAnswer(what: string): EngineError {
    return new EngineError(`${label(this.backend)}: ${what}`, { publicMessage: `${publicLabel(this.role, this.backend)}: ${what}` });
  }

  /** Asks the server what it serves; fails when the configured model is not among it. */
  async connect(): Promise<void> {
    const b = this.backend;
    const listed = await listModels(this.client, b.dialect);
    if (b.model) {
      if (listed.length > 0 && !listed.includes(b.model) && !listed.map(reportedName).includes(b.model)) {
        throw new EngineError(`${label(b)} does not serve model '${b.model}' (it lists: ${listed.join(', ')})`);
      }
      this.model = b.model;
    } else if (listed.length === 1) {
      this.model = listed[0];
    } else {
      throw new EngineError(
        listed.length === 0
          ? `${label(b)} lists no model; name the ${this.role} model with --${this.role}-server-model`
          : `${label(b)} serves several models (${listed.join(', ')}); choose one with --${this.role}-server-model`,
      );
    }
    if (this.role === 'generation') this.shape = await this.promptShape();
  }

  /**
   * llama-server: the model's template (GET /props) rendered by the server for
   * one user turn with thinking off (POST /apply-template, the same renderer
   * and kwargs its /v1/chat/completions uses), around a marker. A model
   * without a template (llama-server then lists its ChatML fallback) gets the
   * raw prompt, as in the local engine. openai, ollama: the server applies the
   * template to each request; its text is not known here.
   */
  private async promptShape(): Promise<PromptShape> {
    const b = this.backend;
    if (b.dialect !== 'llama-server') return { kind: 'chat', before: '', after: '', thinks: true };
    const props = (await this.client.json('GET', '/props')) as { chat_template?: unknown };
    const template = typeof props.chat_template === 'string' ? props.chat_template : '';
    if (template === '' || template === LLAMA_CPP_FALLBACK_TEMPLATE) return { kind: 'raw', before: '', after: '', thinks: false };
    const res = (await this.client
      .json('POST', '/apply-template', { messages: [{ role: 'user', content: PROMPT_MARK }], chat_template_kwargs: { enable_thinking: false } })
      .catch((err: Error) => {
        if (/HTTP 404/.test(err.message)) {
          throw new EngineError(`${label(b)} has no /apply-template (an older llama.cpp build): update llama-server to render the model's chat template`, {
            cause: err,
          });
        }
        throw err;
      })) as { prompt?: unknown };
    if (typeof res.prompt !== 'string') throw new EngineError(`${label(b)}: /apply-template answered without a prompt`);
    try {
      return { kind: 'chat', ...splitAtPrompt(res.prompt), thinks: templateThinks(template) };
    } catch (err) {
      throw new EngineError(`${label(b)}: ${(err as Error).message} (/apply-template answered ${JSON.stringify(res.prompt)})`);
    }
  }

  /**
   * Dialect + the model the server reports (+ the prompt shape for
   * generation): results of different backends, or of prompts shaped
   * differently, never share cache rows.
   */
  modelId(): string {
    const id = `${this.backend.dialect}:${reportedName(this.model)}`;
    return this.role === 'generation' ? `${id}#${this.shape.kind}` : id;
  }

  /**
   * llama-server's `prompt`: the template's text around the user's prompt as
   * tokens. The server tokenizes prompt strings with special tokens parsed;
   * the user's text goes through /tokenize with `parse_special: false`, so
   * text such as `<|im_end|>` in a prompt stays text and cannot close its
   * turn (as in the local engine). The first element is a string, so the
   * server puts the model's BOS in front as for a string prompt.
   */
  private async llamaServerPrompt(prompt: string, signal?: AbortSignal): Promise<string | Array<string | number>> {
    const { before, after } = this.shape;
    const res = (await this.client.json('POST', '/tokenize', { content: prompt, add_special: false, parse_special: false }, signal)) as {
      tokens?: unknown;
    };
    const tokens = res.tokens;
    if (!Array.isArray(tokens) || tokens.some((t) => !Number.isInteger(t))) {
      throw this.badAnswer('/tokenize answered without tokens');
    }
    // Strings alone would be read as several prompts; with no user text there is nothing to keep apart.
    if (tokens.length === 0) return before + after;
    return [before, ...(tokens as number[]), after];
  }

  refuseUnless(fn: FunctionName): void {
    const why = refusal(this.backend.dialect, fn);
    if (why) throw new EngineInputError(`${fn}: ${why}`);
  }

  async complete(prompt: string, opts: GenerateOptions, c?: Constraint): Promise<Completion> {
    const { dialect } = this.backend;
    const s = opts.signal;
    if (dialect === 'llama-server') {
      const res = (await this.client.json(
        'POST',
        '/completion',
        {
          prompt: await this.llamaServerPrompt(prompt, s),
          n_predict: opts.maxTokens,
          temperature: 0,
          top_k: 1,
          seed: opts.seed,
          cache_prompt: false,
          ...(c ? { grammar: c.gbnf } : {}),
        },
        s,
      )) as { content?: unknown; stop_type?: unknown };
      if (typeof res.content !== 'string') throw this.badAnswer('/completion answered without content');
      return { text: res.content, truncated: res.stop_type === 'limit' };
    }
    if (dialect === 'openai') {
      // JSON: OpenAI's `response_format` (vLLM, SGLang and llama-server honour it);
      // regex and choice: vLLM's `structured_outputs` (a server that ignores it
      // returns unconstrained text, which the result check refuses).
      const structured = c?.kind === 'regex' ? { regex: c.pattern } : c?.kind === 'choice' ? { choice: c.choices } : undefined;
      const res = (await this.client.json(
        'POST',
        '/v1/chat/completions',
        {
          model: this.model,
          messages: [{ role: 'user', content: prompt }],
          max_tokens: opts.maxTokens,
          temperature: 0,
          top_k: 1,
          seed: opts.seed,
          chat_template_kwargs: { enable_thinking: false },
          ...(c?.kind === 'json' ? { response_format: { type: 'json_schema', json_schema: { name: 'steadytext', schema: c.schema, strict: true } } } : {}),
          ...(structured ? { structured_outputs: structured } : {}),
        },
        s,
      )) as { choices?: Array<{ message?: { content?: unknown }; finish_reason?: unknown }> };
      const choice = res.choices?.[0];
      const text = choice?.message?.content;
      if (typeof text !== 'string') {
        throw this.badAnswer('/v1/chat/completions answered without choices[0].message.content');
      }
      return { text, truncated: choice!.finish_reason === 'length' };
    }
    if (dialect === 'ollama') {
      const res = (await this.client.json(
        'POST',
        '/api/generate',
        {
          model: this.model,
          prompt, // not `raw`: Ollama applies the model's template
          stream: false,
          think: false,
          ...(c?.kind === 'json' ? { format: c.schema } : {}),
          options: { temperature: 0, top_k: 1, seed: opts.seed, num_predict: opts.maxTokens },
        },
        s,
      )) as { response?: unknown; done_reason?: unknown };
      if (typeof res.response !== 'string') throw this.badAnswer('/api/generate answered without response');
      return { text: res.response, truncated: res.done_reason === 'length' };
    }
    throw new EngineInputError(`generation: ${refusal(dialect, 'generate')}`);
  }

  async embed(texts: string[], signal?: AbortSignal): Promise<number[][]> {
    const size = this.backend.embedBatchSize;
    const chunks: string[][] = [];
    for (let i = 0; i < texts.length; i += size) chunks.push(texts.slice(i, i + size));
    const answers = await Promise.all(
      chunks.map(async (input) => {
        const res = (await this.client.json(
          'POST',
          '/v1/embeddings',
          { model: this.model, input, encoding_format: 'float' },
          signal,
        )) as { data?: Array<{ index?: number; embedding?: unknown }> };
        const data = res.data ?? [];
        if (data.length !== input.length) {
          throw this.badAnswer(`/v1/embeddings answered ${data.length} vectors for ${input.length} texts`);
        }
        // OpenAI's shape carries an index per vector; order by it when present.
        return [...data].sort((a, b) => (a.index ?? 0) - (b.index ?? 0)).map((d) => d.embedding);
      }),
    );
    const vectors = answers.flat().map((v, i) => normalise(v, i));
    if (vectors.some((v) => v.length !== vectors[0].length)) throw new EngineError('the server answered vectors of different dimensions');
    return vectors;
  }

  async rerank(query: string, documents: string[], signal?: AbortSignal): Promise<Array<{ index: number; score: number }>> {
    const { dialect } = this.backend;
    let scored: Array<{ index?: unknown; score?: unknown }>;
    if (dialect === 'tei') {
      const res = (await this.client.json('POST', '/rerank', { query, texts: documents, raw_scores: false }, signal)) as Array<{
        index?: unknown;
        score?: unknown;
      }>;
      scored = Array.isArray(res) ? res : [];
    } else {
      const res = (await this.client.json(
        'POST',
        '/v1/rerank',
        { model: this.model, query, documents, top_n: documents.length },
        signal,
      )) as { results?: Array<{ index?: unknown; relevance_score?: unknown }> };
      scored = (res.results ?? []).map((r) => ({ index: r.index, score: r.relevance_score }));
    }
    const seen = new Set<number>();
    const out = scored.map((r) => {
      const index = r.index;
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= documents.length || seen.has(index)) {
        throw this.badAnswer(`the rerank answer holds an unknown document index ${String(index)}`);
      }
      if (typeof r.score !== 'number' || !Number.isFinite(r.score)) {
        throw this.badAnswer('the rerank answer holds a score that is not a number');
      }
      seen.add(index);
      return { index, score: r.score };
    });
    if (out.length !== documents.length) {
      throw this.badAnswer(`the rerank answer scores ${out.length} of ${documents.length} documents`);
    }
    return out;
  }
}


/**
 * An Engine whose roles are served by inference servers. Roles without a
 * server are not served (modelId throws); RoutedEngine puts the local engine
 * behind those.
 */
export class HttpEngine implements Engine {
  private readonly servers: Partial<Record<ModelRole, RoleServer>> = {};

  private constructor(backends: HttpBackends) {
    for (const [role, b] of Object.entries(backends) as Array<[ModelRole, HttpBackend]>) {
      if (b) this.servers[role] = new RoleServer(role, b);
    }
  }

  /** Checks every server (reachable, model listed) and returns the engine. */
  static async connect(backends: HttpBackends): Promise<HttpEngine> {
    const engine = new HttpEngine(backends);
    for (const [role, server] of Object.entries(engine.servers) as Array<[ModelRole, RoleServer]>) {
      if (role === 'generation' && server.backend.dialect === 'tei') throw new EngineError(refusal('tei', 'generate')!);
      if (role === 'reranking' && server.backend.dialect === 'ollama') throw new EngineError(refusal('ollama', 'rerank')!);
      await server.connect();
    }
    return engine;
  }

  serves(role: ModelRole): boolean {
    return this.servers[role] !== undefined;
  }

  private server(role: ModelRole): RoleServer {
    const s = this.servers[role];
    if (!s) throw new EngineError(`no server is configured for ${role}`);
    return s;
  }

  modelId(role: ModelRole): string {
    return this.server(role).modelId();
  }

  /** Job types this engine refuses, with the reason (for the worker's start log and doctor). */
  refusals(): Array<{ function: FunctionName; reason: string }> {
    const out: Array<{ function: FunctionName; reason: string }> = [];
    for (const s of Object.values(this.servers)) {
      for (const fn of functionsOfRole(s!.role)) {
        const reason = refusal(s!.backend.dialect, fn);
        if (reason) out.push({ function: fn, reason });
      }
    }
    return out;
  }

  private async run<T>(what: string, signal: AbortSignal | undefined, f: () => Promise<T>): Promise<T> {
    if (signal?.aborted) throw new EngineAbortedError(`${what} aborted`);
    try {
      return await f();
    } catch (err) {
      if (err instanceof EngineError) throw err;
      throw new EngineError(`${what} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async generate(prompt: string, opts: GenerateOptions): Promise<string> {
    const s = this.server('generation');
    s.refuseUnless('generate');
    validateGenerateOptions(opts);
    return this.run('generation', opts.signal, async () => {
      const { text, truncated } = await s.complete(prompt, opts);
      // A grammar fixes the output's shape from its first token; only free text can hold a thinking block.
      return s.shape.thinks ? answerWithoutThinking(text, truncated, opts.maxTokens) : text;
    });
  }

  async generateJson(prompt: string, schema: unknown, opts: GenerateOptions): Promise<unknown> {
    const s = this.server('generation');
    s.refuseUnless('generate_json');
    validateGenerateOptions(opts);
    // compileJsonSchema vets the schema (the structured contract) before ajv sees it
    const { gbnf } = compileJsonSchema(schema, opts.maxTokens);
    const validate = schemaValidator(schema);
    const { text, truncated } = await this.run('generation', opts.signal, () =>
      s.complete(prompt, opts, { kind: 'json', schema, gbnf }),
    );
    return checkJsonOutput(text, validate, truncated, opts.maxTokens);
  }

  async generateRegex(prompt: string, pattern: string, opts: GenerateOptions): Promise<string> {
    const s = this.server('generation');
    s.refuseUnless('generate_regex');
    if (typeof pattern !== 'string') throw new EngineInputError('pattern must be a string');
    validateGenerateOptions(opts);
    const { gbnf, matcher } = compileRegex(pattern, opts.maxTokens);
    const { text, truncated } = await this.run('generation', opts.signal, () =>
      s.complete(prompt, opts, { kind: 'regex', pattern, gbnf }),
    );
    return checkRegexOutput(text, matcher, truncated, opts.maxTokens);
  }

  async generateChoice(prompt: string, choices: string[], opts: GenerateOptions): Promise<string> {
    const s = this.server('generation');
    s.refuseUnless('generate_choice');
    const gbnf = choiceGbnf(choices);
    validateGenerateOptions(opts);
    const { text, truncated } = await this.run('generation', opts.signal, () =>
      s.complete(prompt, opts, { kind: 'choice', choices, gbnf }),
    );
    return checkChoiceOutput(text, choices, truncated, opts.maxTokens);
  }

  async embed(texts: string[], opts?: { signal?: AbortSignal }): Promise<number[][]> {
    const s = this.server('embedding');
    if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) throw new EngineInputError('embed expects an array of strings');
    if (texts.some((t) => t.length === 0)) throw new EngineInputError('cannot embed an empty text');
    if (texts.length === 0) return [];
    return this.run('embedding', opts?.signal, () => s.embed(texts, opts?.signal));
  }

  async rerank(
    query: string,
    documents: string[],
    task: string,
    opts?: { seed?: number; signal?: AbortSignal },
  ): Promise<RankedDocument[]> {
    const s = this.server('reranking');
    s.refuseUnless('rerank');
    if (typeof query !== 'string') throw new EngineInputError('rerank expects a query string');
    if (!Array.isArray(documents) || documents.some((d) => typeof d !== 'string')) {
      throw new EngineInputError('rerank expects documents as an array of strings');
    }
    if (documents.length === 0) return [];
    // As the local engine: any task but the model's default goes in front of the query.
    const fullQuery = task && task !== DEFAULT_RERANK_TASK ? `${task}\n${query}` : query;
    const scored = await this.run('rerank', opts?.signal, () => s.rerank(fullQuery, documents, opts?.signal));
    return scored
      .map(({ index, score }) => ({ document: documents[index], score, index }))
      .sort((a, b) => b.score - a.score || a.index - b.index);
  }

  async dispose(): Promise<void> {
    // Nothing held open: fetch's keep-alive sockets close on their own when idle.
  }
}

/** Each role from its server when one is configured, else from the local engine. */
export class RoutedEngine implements Engine {
  constructor(
    private readonly remote: HttpEngine,
    private readonly local: Engine,
  ) {}

  private for(role: ModelRole): Engine {
    return this.remote.serves(role) ? this.remote : this.local;
  }

  modelId(role: ModelRole): string {
    return this.for(role).modelId(role);
  }

  /** The servers' refusals, and the local engine's for the roles it serves (a model missing here). */
  refusals(): Refusal[] {
    const local = (this.local as { refusals?: () => Refusal[] }).refusals?.() ?? [];
    const localRoles = MODEL_ROLES.filter((role) => !this.remote.serves(role));
    const servedLocally = new Set(localRoles.flatMap((role) => functionsOfRole(role)));
    return [...this.remote.refusals(), ...local.filter((r) => servedLocally.has(r.function))];
  }

  isLoaded(role: ModelRole): boolean | undefined {
    if (this.remote.serves(role)) return true;
    const l = this.local as { isLoaded?: (role: ModelRole) => boolean };
    return typeof l.isLoaded === 'function' ? l.isLoaded(role) : undefined;
  }

  generate(prompt: string, opts: GenerateOptions): Promise<string> {
    return this.for('generation').generate(prompt, opts);
  }
  generateJson(prompt: string, schema: unknown, opts: GenerateOptions): Promise<unknown> {
    return this.for('generation').generateJson(prompt, schema, opts);
  }
  generateRegex(prompt: string, pattern: string, opts: GenerateOptions): Promise<string> {
    return this.for('generation').generateRegex(prompt, pattern, opts);
  }
  generateChoice(prompt: string, choices: string[], opts: GenerateOptions): Promise<string> {
    return this.for('generation').generateChoice(prompt, choices, opts);
  }
  embed(texts: string[], opts?: { signal?: AbortSignal }): Promise<number[][]> {
    return this.for('embedding').embed(texts, opts);
  }
  rerank(query: string, documents: string[], task: string, opts?: { seed?: number; signal?: AbortSignal }): Promise<RankedDocument[]> {
    return this.for('reranking').rerank(query, documents, task, opts);
  }
  async dispose(): Promise<void> {
    await this.remote.dispose();
    await this.local.dispose();
  }
}
