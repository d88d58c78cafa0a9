// The engine in GPU mode (STEADYTEXT_GPU=cuda: node-llama-cpp's CUDA
// prebuilt, layers offloaded), where an NVIDIA GPU is present: every job
// type answers, runs repeat byte for byte, and the outputs are compared with
// the CPU's (reported, for docs/engine.md "GPU"). Skipped, saying why, where
// there is no GPU. The whole engine suite also runs on the GPU with
// `STEADYTEXT_GPU=cuda npm test -- test/engine/*.test.ts`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { loadEngine, type Engine } from '../../src/engine/index.ts';
import { qwenShapedModelDir } from './qwenShaped.ts';
import { TINY_DIR } from './tinyEngine.ts';

function nvidiaGpu(): string | undefined {
  try {
    const out = execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 20_000 });
    return /^GPU \d+:/m.test(out) ? out.trim().split('\n')[0] : undefined;
  } catch {
    return undefined;
  }
}

const gpu = nvidiaGpu();
const SKIP = gpu
  ? false
  : 'no NVIDIA GPU on this machine (`nvidia-smi -L` lists none): GPU mode is not tested here, and GPU-vs-CPU equality is not measured';

const PROMPTS = ['Write a poem about databases', 'Summarize: queues in PostgreSQL', 'x', 'Explain LISTEN/NOTIFY in one line'];
const TEXTS = ['hello', 'PostgreSQL is amazing', '東京', 'a much longer text about queues, workers and models'];
const DOCS = ['kittens purr', 'the stock market fell', 'cats sleep all day'];

interface Outputs {
  generate: string[];
  choice: string[];
  embed: number[][];
  rerank: number[];
}

async function run(engine: Engine): Promise<Outputs> {
  const generate: string[] = [];
  const choice: string[] = [];
  for (const p of PROMPTS) {
    generate.push(await engine.generate(p, { maxTokens: 24, seed: 42 }));
    choice.push(await engine.generateChoice(p, ['positive', 'negative', 'neutral'], { maxTokens: 8, seed: 42 }));
  }
  const embed = await engine.embed(TEXTS);
  const rerank = (await engine.rerank('cats', DOCS, '')).sort((a, b) => a.index - b.index).map((r) => r.score);
  return { generate, choice, embed, rerank };
}

async function outputs(gpuMode: 'off' | 'cuda', set: 'tiny' | 'default', modelDir: string): Promise<Outputs> {
  const saved = process.env.STEADYTEXT_GPU;
  process.env.STEADYTEXT_GPU = gpuMode;
  try {
    const engine = await loadEngine({ models: set, modelDir, threads: 1 });
    try {
      return await run(engine);
    } finally {
      await engine.dispose();
    }
  } finally {
    if (saved === undefined) delete process.env.STEADYTEXT_GPU;
    else process.env.STEADYTEXT_GPU = saved;
  }
}

function compare(cpu: Outputs, onGpu: Outputs): string {
  const same = (a: unknown[], b: unknown[]) => a.filter((x, i) => JSON.stringify(x) === JSON.stringify(b[i])).length;
  let maxEmbed = 0;
  cpu.embed.forEach((v, i) => v.forEach((x, j) => (maxEmbed = Math.max(maxEmbed, Math.abs(x - onGpu.embed[i][j])))));
  const maxRerank = Math.max(...cpu.rerank.map((x, i) => Math.abs(x - onGpu.rerank[i])));
  return (
    `generate ${same(cpu.generate, onGpu.generate)}/${cpu.generate.length} identical, ` +
    `choice ${same(cpu.choice, onGpu.choice)}/${cpu.choice.length}, ` +
    `embeddings max |diff| ${maxEmbed.toExponential(2)}, rerank max |diff| ${maxRerank.toExponential(2)}`
  );
}

for (const set of ['tiny', 'default'] as const) {
  test(`GPU mode (${set === 'tiny' ? 'tiny set' : 'Qwen-shaped default set'}): every job type answers, deterministically; compared with the CPU`, { skip: SKIP, timeout: 300_000 }, async (t) => {
    const dir = set === 'tiny' ? TINY_DIR : qwenShapedModelDir();
    const first = await outputs('cuda', set, dir);
    const second = await outputs('cuda', set, dir);
    assert.deepEqual(second, first, 'two GPU runs give identical outputs');
    for (const v of first.embed) assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5);
    for (const c of first.choice) assert.ok(['positive', 'negative', 'neutral'].includes(c));
    const cpu = await outputs('off', set, dir);
    t.diagnostic(`${gpu}: GPU vs CPU (${set}): ${compare(cpu, first)}`);
  });
}
