// Model resolution: a missing model names itself and `steadytext models pull`;
// downloads fail fast and clearly offline; modelId needs no load.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { describeModels, loadEngine, ModelNotFoundError } from '../../src/engine/index.ts';
import { downloadModel } from '../../src/engine/download.ts';
import { modelIdFor, modelSource, resolveSettings } from '../../src/engine/modelSources.ts';

const emptyDir = () => mkdtempSync(path.join(os.tmpdir(), 'steadytext-nomodels-'));

test('a missing model raises ModelNotFoundError naming it and the pull command', async () => {
  const engine = await loadEngine({ models: 'default', modelDir: emptyDir() });
  const calls = [
    () => engine.generate('x', { maxTokens: 4, seed: 1 }),
    () => engine.embed(['x']),
    () => engine.rerank('q', ['d'], ''),
  ];
  for (const call of calls) {
    await assert.rejects(call(), (err: Error) => {
      assert.ok(err instanceof ModelNotFoundError, String(err));
      assert.match(err.message, /Qwen3-(0\.6B|Embedding|Reranker)|qwen3-reranker/);
      assert.match(err.message, /steadytext models pull/);
      return true;
    });
  }
  await engine.dispose();
});

test('describeModels says what is missing and what to run', () => {
  const d = describeModels({ models: 'default', modelDir: emptyDir() });
  assert.equal(d.set, 'default');
  assert.equal(d.ready, false);
  for (const m of d.models) {
    assert.equal(m.present, false);
    assert.match(m.fix ?? '', /steadytext models pull/);
  }
  const tiny = describeModels({ models: 'tiny', modelDir: emptyDir() });
  assert.equal(tiny.ready, true);
  assert.ok(tiny.models.every((m) => m.modelId.includes('tiny')));
});

test('env overrides select a local file, and modelId hashes it without loading', () => {
  const dir = emptyDir();
  const file = path.join(dir, 'my-model.gguf');
  writeFileSync(file, Buffer.alloc(3 * 1024 * 1024, 7));
  const settings = resolveSettings({ modelDir: dir }, { STEADYTEXT_GENERATION_MODEL: file });
  const d = describeModels({ modelDir: dir });
  assert.equal(d.models[0].present, false); // process.env has no override
  const src = modelSource('generation', settings);
  assert.equal(src.kind, 'path');
  assert.equal(src.localPath, file);
  assert.match(modelIdFor(src), /^my-model\.gguf:3145728:[0-9a-f]{12}$/);
});

test('downloading offline fails with a clear error, not a hang', async () => {
  const dir = emptyDir();
  const settings = resolveSettings({ modelDir: dir }, {});
  const started = Date.now();
  await assert.rejects(
    downloadModel(modelSource('embedding', settings), settings, { timeoutMs: 8000 }),
    (err: Error) => {
      assert.match(err.message, /Qwen3-Embedding|huggingface|offline|failed/i);
      return true;
    },
  );
  assert.ok(Date.now() - started < 15_000);
});

test('with STEADYTEXT_ALLOW_DOWNLOAD=1 an offline load still ends in ModelNotFoundError', async () => {
  const prev = process.env.STEADYTEXT_ALLOW_DOWNLOAD;
  process.env.STEADYTEXT_ALLOW_DOWNLOAD = '1';
  try {
    const engine = await loadEngine({ models: 'default', modelDir: emptyDir() });
    await assert.rejects(engine.embed(['x']), (err: Error) => {
      assert.ok(err instanceof ModelNotFoundError, String(err));
      assert.match(err.message, /steadytext models pull/);
      return true;
    });
    await engine.dispose();
  } finally {
    if (prev === undefined) delete process.env.STEADYTEXT_ALLOW_DOWNLOAD;
    else process.env.STEADYTEXT_ALLOW_DOWNLOAD = prev;
  }
});

test('STEADYTEXT_ENGINE_MODULE plugs in another engine', async () => {
  const dir = emptyDir();
  const mod = path.join(dir, 'fake.mjs');
  writeFileSync(mod, "export default async () => ({ modelId: () => 'fake', dispose: async () => {} });\n");
  const engine = await loadEngine({ modulePath: mod });
  assert.equal(engine.modelId('generation'), 'fake');
});
