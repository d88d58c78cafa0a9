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

export function tinyVocab(): TinyVocab {
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
  return { tokens, scores, types };
}

/** The bytes of a tiny model: a pure function of its role (spec + seed). */
export function buildTinyModel(role: ModelRole): Buffer {
  const s = SPECS[role];
  const vocab = tinyVocab();
  const nVocab = vocab.tokens.length;
  const headDim = s.nEmbd / s.nHead;
  const arch = s.architecture;
  const randn = gaussian(prng(s.seed));
  const tensors: GgufTensor[] = [];
  const matrix = (name: string, nIn: number, nOut: number, gain = 1): void => {
    const data = new Float32Array(nIn * nOut);
    const scale = gain / Math.sqrt(nIn);
    for (let i = 0; i < data.length; i++) data[i] = randn() * scale;
    tensors.push({ name, dims: [nIn, nOut], data });
  };
  const ones = (name: string, n: number): void => {
    tensors.push({ name, dims: [n], data: new Float32Array(n).fill(1) });
  };

  matrix('token_embd.weight', s.nEmbd, nVocab, Math.sqrt(s.nEmbd));
  ones('output_norm.weight', s.nEmbd);
  if (arch === 'llama') matrix('output.weight', s.nEmbd, nVocab, 4);
  for (let l = 0; l < s.nLayer; l++) {
    const p = `blk.${l}.`;
    ones(`${p}attn_norm.weight`, s.nEmbd);
    matrix(`${p}attn_q.weight`, s.nEmbd, s.nHead * headDim);
    matrix(`${p}attn_k.weight`, s.nEmbd, s.nHeadKv * headDim);
    matrix(`${p}attn_v.weight`, s.nEmbd, s.nHeadKv * headDim);
    matrix(`${p}attn_output.weight`, s.nHead * headDim, s.nEmbd);
    if (arch === 'qwen3') {
      ones(`${p}attn_q_norm.weight`, headDim);
      ones(`${p}attn_k_norm.weight`, headDim);
    }
    ones(`${p}ffn_norm.weight`, s.nEmbd);
    matrix(`${p}ffn_gate.weight`, s.nEmbd, s.nFf);
    matrix(`${p}ffn_up.weight`, s.nEmbd, s.nFf);
    matrix(`${p}ffn_down.weight`, s.nFf, s.nEmbd);
  }
  if (role === 'reranking') matrix('cls.output.weight', s.nEmbd, 2, 4);

  const meta: Record<string, GgufValue> = {
    'general.architecture': str(arch),
    'general.name': str(tinyModelId(role)),
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
  if (role === 'embedding') meta[`${arch}.pooling_type`] = u32(1); // mean
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
    'tokenizer.ggml.bos_token_id': u32(1),
    'tokenizer.ggml.eos_token_id': u32(2),
    'tokenizer.ggml.add_bos_token': { type: 'bool', value: true },
    'tokenizer.ggml.add_eos_token': { type: 'bool', value: false },
  } satisfies Record<string, GgufValue>);
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
