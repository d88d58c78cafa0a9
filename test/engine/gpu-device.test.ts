// The local engine's device option: CPU unless asked ('off', the tested
// default), and the device in the model id so CPU and GPU results never share
// cache rows. (No GPU on the test machines: 'cuda'/'vulkan' loading is not run.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LlamaEngine, resolveSettings } from '../../src/engine/index.ts';
import { engineDevice } from '../../src/engine/llamaEngine.ts';
import { resolveSettings as resolveWorkerSettings } from '../../src/worker/settings.ts';
import { tinyModelId } from '../../src/engine/tinyModels.ts';

test('CPU by default; the model id names a GPU device and leaves CPU ids as they were', async () => {
  const s = resolveSettings({ models: 'tiny' }, {});
  assert.equal(s.gpu, 'off');
  assert.equal(await engineDevice('off'), 'cpu');
  assert.equal(new LlamaEngine(s, 'cpu').modelId('generation'), tinyModelId('generation'));
  assert.equal(new LlamaEngine(s).modelId('embedding'), tinyModelId('embedding'));
  assert.equal(new LlamaEngine({ ...s, gpu: 'cuda' }, 'cuda').modelId('generation'), `${tinyModelId('generation')}@cuda`);
  assert.equal(new LlamaEngine({ ...s, gpu: 'auto' }, 'vulkan').modelId('reranking'), `${tinyModelId('reranking')}@vulkan`);
});

test('a bad device mode names the setting', () => {
  assert.throws(() => resolveSettings({}, { STEADYTEXT_GPU: 'metal' }), /STEADYTEXT_GPU: expected off, auto, cuda or vulkan, got 'metal'/);
  assert.throws(() => resolveWorkerSettings({ databaseUrl: 'postgres://x/y', gpu: 'yes' }, {}, {}), /--gpu: expected off, auto, cuda or vulkan, got 'yes'/);
  assert.equal(resolveWorkerSettings({ databaseUrl: 'postgres://x/y' }, { STEADYTEXT_GPU: 'auto' }, {}).gpu, 'auto');
  assert.equal(resolveWorkerSettings({ databaseUrl: 'postgres://x/y', gpu: 'cuda' }, { STEADYTEXT_GPU: 'auto' }, {}).gpu, 'cuda');
});
