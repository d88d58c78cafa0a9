// Tiny seeded test models (STEADYTEXT_MODELS=tiny). No npm package ships
// generation weights, so we write our own: random F32 weights from a seeded
// PRNG, a SentencePiece-style 'llama' tokenizer that covers every byte. They
// load through the same code path as a real GGUF. Their output is noise: it is
// test output, and every modelId says 'tiny'.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeGguf, f32, str, u32, type GgufTensor, type GgufValue } from './ggufWriter.ts';
import type { ModelRole } from './types.ts';
import { DEFAULT_RERANK_TASK } from '../jobTypes.ts';

/** Bump when the bytes a given seed produces change. */
export const TINY_GENERATOR_VERSION = 1;

interface TinySpec {
  role: ModelRole;
  architecture: 'llama' | 'qwen3';
  seed: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
  contextLength: number;
}

const SPECS: Record<ModelRole, TinySpec> = {
  generation: { role: 'generation', architecture: 'llama', seed: 1, nEmbd: 64, nLayer: 2, nHead: 4, nHeadKv: 4, nFf: 128, contextLength: 4096 },
  embedding: { role: 'embedding', architecture: 'llama', seed: 2, nEmbd: 64, nLayer: 2, nHead: 4, nHeadKv: 4, nFf: 128, contextLength: 4096 },
  reranking: { role: 'reranking', architecture: 'qwen3', seed: 3, nEmbd: 64, nLayer: 2, nHead: 4, nHeadKv: 4, nFf: 128, contextLength: 4096 },
};

/** The file name of a tiny model; also the base of its modelId. */
export function tinyModelFileName(role: ModelRole): string {
  const s = SPECS[role];
  return `steadytext-tiny-${role}-v${TINY_GENERATOR_VERSION}-seed${s.seed}.gguf`;
}

/** modelId of a tiny model: generator version + seed, no file access needed. */
export function tinyModelId(role: ModelRole): string {
  const s = SPECS[role];
  return `tiny-${role}-v${TINY_GENERATOR_VERSION}-seed${s.seed}`;
}

/** True for a tiny model's id (steadytext_queue.model_id, steadytext_workers.models), on any device. */
export function isTinyModelId(id: string | null | undefined): boolean {
  return id !== null && id !== undefined && /^tiny-(generation|embedding|reranking)-v\d+-seed\d+(@|$)/.test(id);
}

/** How the tiny set's output is labelled wherever people see it (`steadytext up`, `steadytext wait`). */
export const TINY_OUTPUT_LABEL =
  'TEST MODELS: their output is deterministic noise for trying the pipeline, not real text (the default set is the real one)';

// mulberry32: small, fast, and the same everywhere.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(rand: () => number): () => number {
  return () => {
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

// Vocabulary: <unk> <s> </s>, the 256 byte tokens, printable ASCII, and a few
// merges so that common text does not fall back to bytes entirely.
const MERGES = [
  '▁t', '▁a', '▁s', '▁o', '▁i', 'th', 'he', 'in', 'er', 'an', 're', 'on', 'at', 'en', 'es', 'or',
  'is', 'ed', 'nd', 'ing', '▁th', '▁the', '▁an', '▁and', '▁of', '▁is', '▁in', '▁to',
];

export interface TinyVocab {
  tokens: string[];
  scores: number[];
  types: number[];
}

/**
 * Special tokens of the Qwen-shaped tiny models (appended after the plain
 * vocabulary): ChatML turn markers and end-of-text as control tokens (3), the
 * thinking markers as user-defined tokens (4), which Qwen3 renders as text.
 */
export const QWEN_SPECIAL_TOKENS = [
  ['<|endoftext|>', 3],
  ['<|im_start|>', 3],
  ['<|im_end|>', 3],
  ['<think>', 4],
  ['</think>', 4],
] as const;

export function tinyVocab(shape: TinyShape = 'plain'): TinyVocab {
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [2, 3, 3];
  const scores: number[] = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
    scores.push(0);
  }
  const singles = ['▁'];
  for (let c = 0x21; c < 0x7f; c++) singles.push(String.fromCharCode(c));
  singles.forEach((t, i) => {
    tokens.push(t);
    types.push(1);
    scores.push(-1000 - i);
  });
  MERGES.forEach((t, i) => {
    tokens.push(t);
    types.push(1);
    scores.push(-10 - i);
  });
  if (shape === 'qwen') {
    for (const [t, type] of QWEN_SPECIAL_TOKENS) {
      tokens.push(t);
      types.push(type);
      scores.push(0);
    }
  }
  return { tokens, scores, types };
}

/**
 * `plain`: the tiny test set (STEADYTEXT_MODELS=tiny). `qwen`: shaped like the
 * default Qwen3 set, for the tests of the default path: architecture `qwen3`,
 * ChatML special tokens, a Qwen3-style chat template (generation) and a
 * Qwen3-Reranker-style rerank template (reranking), both written here from the
 * models' documented prompt formats.
 */
export type TinyShape = 'plain' | 'qwen';

/**
 * Chat template of the Qwen-shaped generation model, in the format Qwen3
 * documents: ChatML turns (`<|im_start|>role\n...<|im_end|>\n`), a generation
 * prompt that opens the assistant turn, and Qwen3's hard switch: with
 * `enable_thinking` false the assistant turn starts with an empty thinking block.
 */
export const QWEN_SHAPED_CHAT_TEMPLATE = [
  "{%- for message in messages -%}",
  "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}",
  '{%- endfor -%}',
  '{%- if add_generation_prompt -%}',
  "{{- '<|im_start|>assistant\\n' -}}",
  '{%- if enable_thinking is defined and not enable_thinking -%}',
  "{{- '<think>\\n\\n</think>\\n\\n' -}}",
  '{%- endif -%}',
  '{%- endif -%}',
].join('\n');

/**
 * Rerank template of the Qwen-shaped reranker, in the layout Qwen3-Reranker
 * documents: a system turn that asks for a yes/no judgement of the Document
 * against the Query and the Instruct, a user turn
 * `<Instruct>: ...\n<Query>: ...\n<Document>: ...` (the instruction Qwen3-Reranker
 * is trained with, which is SteadyText's default task), and an assistant turn
 * opened after an empty thinking block; the score is P(yes) from the yes/no
 * logits (`cls.output`, labels yes/no). `{query}` and `{document}` are
 * llama.cpp's placeholders.
 */
export const QWEN_SHAPED_RERANK_TEMPLATE =
  '<|im_start|>system\nTell whether the Document satisfies what the Query and the Instruct ask for. ' +
  'Reply with one word only, "yes" or "no".<|im_end|>\n' +
  `<|im_start|>user\n<Instruct>: ${DEFAULT_RERANK_TASK}\n<Query>: {query}\n<Document>: {document}<|im_end|>\n` +
  '<|im_start|>assistant\n<think>\n\n</think>\n\n';

/**
 * What the Qwen-shaped generation model says, whatever the prompt: each token
 * predicts the next (attention and MLP outputs are zero, so the last token
 * alone decides), and after the newline that ends every chat prompt it writes
 * a thinking block, then the answer: `<think>hm</think>OK`, then `<|im_end|>`.
 */
export const QWEN_SHAPED_SCRIPT = ['<0x0A>', '<think>', 'h', 'm', '</think>', 'O', 'K', '<|im_end|>'];

/**
 * The bytes of a tiny model: a pure function of its role and shape (spec +
 * seed). `chatTemplate` replaces the Qwen-shaped generation model's template
 * (tests of other templates).
 */
export function buildTinyModel(role: ModelRole, shape: TinyShape = 'plain', opts: { chatTemplate?: string } = {}): Buffer {
  const s = SPECS[role];
  const qwen = shape === 'qwen';
  const vocab = tinyVocab(shape);
  const nVocab = vocab.tokens.length;
  const headDim = s.nEmbd / s.nHead;
  const arch = qwen ? 'qwen3' : s.architecture;
  const scripted = qwen && role === 'generation';
  const randn = gaussian(prng(s.seed));
  const tensors: GgufTensor[] = [];
  const matrix = (name: string, nIn: number, nOut: number, gain = 1): Float32Array => {
    const data = new Float32Array(nIn * nOut);
    const scale = gain / Math.sqrt(nIn);
    for (let i = 0; i < data.length; i++) data[i] = randn() * scale;
    tensors.push({ name, dims: [nIn, nOut], data });
    return data;
  };
  const zeros = (name: string, nIn: number, nOut: number): void => {
    tensors.push({ name, dims: [nIn, nOut], data: new Float32Array(nIn * nOut) });
  };
  const ones = (name: string, n: number): void => {
    tensors.push({ name, dims: [n], data: new Float32Array(n).fill(1) });
  };
  const id = (token: string): number => {
    const i = vocab.tokens.indexOf(token);
    if (i < 0) throw new Error(`tiny vocabulary has no ${token}`);
    return i;
  };

  const embd = matrix('token_embd.weight', s.nEmbd, nVocab, Math.sqrt(s.nEmbd));
  ones('output_norm.weight', s.nEmbd);
  if (arch === 'llama' || scripted) {
    const out = matrix('output.weight', s.nEmbd, nVocab, scripted ? 1 : 4);
    if (scripted) {
      // Source token i of the script gets a one-hot embedding on dimension i
      // (RMS-normalised it stays one-hot, value sqrt(n_embd)); the next token's
      // output row gets a large weight on that dimension.
      QWEN_SHAPED_SCRIPT.slice(0, -1).forEach((token, dim) => {
        const row = embd.subarray(id(token) * s.nEmbd, (id(token) + 1) * s.nEmbd);
        row.fill(0);
        row[dim] = Math.sqrt(s.nEmbd);
        out[id(QWEN_SHAPED_SCRIPT[dim + 1]) * s.nEmbd + dim] += 8;
      });
    }
  }
  for (let l = 0; l < s.nLayer; l++) {
    const p = `blk.${l}.`;
    ones(`${p}attn_norm.weight`, s.nEmbd);
    matrix(`${p}attn_q.weight`, s.nEmbd, s.nHead * headDim);
    matrix(`${p}attn_k.weight`, s.nEmbd, s.nHeadKv * headDim);
    matrix(`${p}attn_v.weight`, s.nEmbd, s.nHeadKv * headDim);
    if (scripted) zeros(`${p}attn_output.weight`, s.nHead * headDim, s.nEmbd);
    else matrix(`${p}attn_output.weight`, s.nHead * headDim, s.nEmbd);
    if (arch === 'qwen3') {
      ones(`${p}attn_q_norm.weight`, headDim);
      ones(`${p}attn_k_norm.weight`, headDim);
    }
    ones(`${p}ffn_norm.weight`, s.nEmbd);
    matrix(`${p}ffn_gate.weight`, s.nEmbd, s.nFf);
    matrix(`${p}ffn_up.weight`, s.nEmbd, s.nFf);
    if (scripted) zeros(`${p}ffn_down.weight`, s.nFf, s.nEmbd);
    else matrix(`${p}ffn_down.weight`, s.nFf, s.nEmbd);
  }
  if (role === 'reranking') matrix('cls.output.weight', s.nEmbd, 2, 4);

  const meta: Record<string, GgufValue> = {
    'general.architecture': str(arch),
    'general.name': str(qwen ? `${tinyModelId(role)}-qwen-shaped` : tinyModelId(role)),
    'general.file_type': u32(0),
    [`${arch}.context_length`]: u32(s.contextLength),
    [`${arch}.embedding_length`]: u32(s.nEmbd),
    [`${arch}.block_count`]: u32(s.nLayer),
    [`${arch}.feed_forward_length`]: u32(s.nFf),
    [`${arch}.attention.head_count`]: u32(s.nHead),
    [`${arch}.attention.head_count_kv`]: u32(s.nHeadKv),
    [`${arch}.attention.layer_norm_rms_epsilon`]: f32(1e-5),
    [`${arch}.rope.dimension_count`]: u32(headDim),
    [`${arch}.rope.freq_base`]: f32(10000),
  };
  if (arch === 'qwen3') {
    meta['qwen3.attention.key_length'] = u32(headDim);
    meta['qwen3.attention.value_length'] = u32(headDim);
  }
  // Qwen3-Embedding pools the last token; the plain set mean-pools.
  if (role === 'embedding') meta[`${arch}.pooling_type`] = u32(qwen ? 3 : 1);
  if (role === 'reranking') {
    meta['qwen3.pooling_type'] = u32(4); // rank
    meta['qwen3.classifier.output_labels'] = { type: 'string[]', value: ['yes', 'no'] };
  }
  Object.assign(meta, {
    'tokenizer.ggml.model': str('llama'),
    'tokenizer.ggml.tokens': { type: 'string[]', value: vocab.tokens },
    'tokenizer.ggml.scores': { type: 'f32[]', value: vocab.scores },
    'tokenizer.ggml.token_type': { type: 'i32[]', value: vocab.types },
    'tokenizer.ggml.unknown_token_id': u32(0),
    'tokenizer.ggml.bos_token_id': u32(qwen ? id('<|endoftext|>') : 1),
    'tokenizer.ggml.eos_token_id': u32(qwen ? id('<|im_end|>') : 2),
    'tokenizer.ggml.add_bos_token': { type: 'bool', value: !qwen },
    'tokenizer.ggml.add_eos_token': { type: 'bool', value: false },
  } satisfies Record<string, GgufValue>);
  if (qwen) {
    meta['tokenizer.ggml.padding_token_id'] = u32(id('<|endoftext|>'));
    meta['tokenizer.ggml.add_space_prefix'] = { type: 'bool', value: false };
    if (role === 'generation') meta['tokenizer.chat_template'] = str(opts.chatTemplate ?? QWEN_SHAPED_CHAT_TEMPLATE);
    if (role === 'reranking') meta['tokenizer.chat_template.rerank'] = str(QWEN_SHAPED_RERANK_TEMPLATE);
  }
  return writeGguf(meta, tensors);
}

/**
 * Writes the tiny model for `role` into `dir` unless an identical file is
 * already there; returns its path. Atomic (temp file + rename), so concurrent
 * processes never load a half-written file.
 */
export function ensureTinyModel(role: ModelRole, dir: string): string {
  const file = path.join(dir, tinyModelFileName(role));
  const bytes = buildTinyModel(role);
  if (existsSync(file)) {
    const existing = readFileSync(file);
    if (sha256(existing) === sha256(bytes)) return file;
  }
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, file);
  return file;
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
