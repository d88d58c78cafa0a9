// Same input, same bytes: across two fresh loads, across processes, and
// whether a job runs alone or alongside others.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { buildTinyModel } from '../../src/engine/tinyModels.ts';
import { outputs } from './fixtures/outputs.ts';
import { rng, tinyEngine, TINY_DIR } from './tinyEngine.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('tiny model files are a pure function of their seed', () => {
  for (const role of ['generation', 'embedding', 'reranking'] as const) {
    const a = buildTinyModel(role);
    const b = buildTinyModel(role);
    assert.equal(sha(a), sha(b), role);
    assert.ok(a.length < 4 * 1024 * 1024, `${role} is ${a.length} bytes`);
  }
});

test('two fresh loads give identical outputs', async () => {
  const e1 = await tinyEngine();
  const first = JSON.stringify(await outputs(e1));
  await e1.dispose();
  const e2 = await tinyEngine();
  const second = JSON.stringify(await outputs(e2));
  await e2.dispose();
  assert.equal(second, first);
});

test('a child process gives identical outputs', async () => {
  const e = await tinyEngine();
  const here = JSON.stringify(await outputs(e));
  await e.dispose();
  const script = path.join(import.meta.dirname, 'fixtures', 'outputs.ts');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, STEADYTEXT_TEST_MODEL_DIR: TINY_DIR },
    maxBuffer: 16 * 1024 * 1024,
  });
  assert.equal(stdout, here);
});

test('output does not depend on concurrency', async () => {
  const e = await tinyEngine({ parallel: 3 });
  const prompts = ['alpha beta', 'the cat sat on the mat', 'SELECT 1;', 'zzz', 'Hello, world'];
  const alone: string[] = [];
  for (const p of prompts) alone.push(await e.generate(p, { maxTokens: 40, seed: 3 }));
  const together = await Promise.all(prompts.map((p) => e.generate(p, { maxTokens: 40, seed: 3 })));
  assert.deepEqual(together, alone);
  const regexAlone = await e.generateRegex('x', '[a-z]{3}\\d{2}', { maxTokens: 10, seed: 1 });
  const mixed = await Promise.all([
    e.generateRegex('x', '[a-z]{3}\\d{2}', { maxTokens: 10, seed: 1 }),
    e.generate('noise', { maxTokens: 60, seed: 1 }),
    e.embed(['noise']),
    e.generateChoice('pick', ['a', 'b'], { maxTokens: 5, seed: 1 }),
  ]);
  assert.equal(mixed[0], regexAlone);
  await e.dispose();
});

/** n distinct texts, some long enough that concurrent prompts share and split the 512-token batch. */
function distinctTexts(n: number, seed: number): string[] {
  const r = rng(seed);
  const words = ['queue', 'vector', 'the', 'PostgreSQL', 'cat', 'über', '東京', 'job', '42', 'SELECT', 'river', 'fox'];
  return Array.from({ length: n }, (_, i) =>
    `${i}: ` + Array.from({ length: i % 10 === 9 ? r.int(150, 300) : r.int(1, 30) }, () => r.pick(words)).join(' '),
  );
}

function shuffled<T>(xs: T[], seed: number): T[] {
  const r = rng(seed);
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = r.int(0, i);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

// The default layout (one job per context) only: with STEADYTEXT_ENGINE_CONTEXTS
// below PARALLEL, sequences share a llama.cpp batch whose make-up depends on
// timing, and on a busy machine a prompt's bytes then differed beside 15
// others (docs/engine.md, Batching); that opt-in mode promises no batch invariance.
test('generation: a prompt gives the same bytes alone and beside 3 or 15 other prompts running at once', async () => {
  const prompts = distinctTexts(32, 7);
  const e1 = await tinyEngine({ parallel: 1 });
  const alone: string[] = [];
  for (const p of prompts) alone.push(await e1.generate(p, { maxTokens: 24, seed: 5 }));
  await e1.dispose();
  for (const n of [4, 16]) {
    // the default layout: n jobs at once, each on its own context
    const e = await tinyEngine({ parallel: n });
    const order = shuffled(prompts.map((_, i) => i), n);
    for (let i = 0; i < order.length; i += n) {
      const part = order.slice(i, i + n);
      const outs = await Promise.all(part.map((k) => e.generate(prompts[k], { maxTokens: 24, seed: 5 })));
      part.forEach((k, j) => assert.equal(outs[j], alone[k], `prompt ${k} beside ${n - 1} others`));
    }
    await e.dispose();
  }
});

test('embeddings: a text gives the same Float32 vector alone and in calls of 4 and 16 texts, any order', async () => {
  const texts = distinctTexts(50, 11);
  const e1 = await tinyEngine({ parallel: 1 });
  const alone: Float32Array[] = [];
  for (const t of texts) alone.push(Float32Array.from((await e1.embed([t]))[0]));
  await e1.dispose();
  for (const n of [4, 16]) {
    const e = await tinyEngine({ parallel: n });
    for (const seed of [1, 2]) {
      const order = shuffled(texts.map((_, i) => i), seed * 100 + n);
      // batches of n, several calls in flight at once
      const calls: Promise<void>[] = [];
      for (let i = 0; i < order.length; i += n) {
        const part = order.slice(i, i + n);
        calls.push(
          e.embed(part.map((k) => texts[k])).then((vs) =>
            part.forEach((k, j) => assert.deepEqual(Float32Array.from(vs[j]), alone[k], `text ${k} in a call of ${part.length}`)),
          ),
        );
      }
      await Promise.all(calls);
    }
    await e.dispose();
  }
});

test('modelId needs no load and labels tiny models', async () => {
  const e = await tinyEngine();
  for (const role of ['generation', 'embedding', 'reranking'] as const) {
    assert.match(e.modelId(role), /tiny/);
  }
  await e.dispose();
});
