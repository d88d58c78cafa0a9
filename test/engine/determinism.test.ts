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
import { tinyEngine, TINY_DIR } from './tinyEngine.ts';

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

test('modelId needs no load and labels tiny models', async () => {
  const e = await tinyEngine();
  for (const role of ['generation', 'embedding', 'reranking'] as const) {
    assert.match(e.modelId(role), /tiny/);
  }
  await e.dispose();
});
