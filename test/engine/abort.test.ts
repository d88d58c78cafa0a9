// An AbortSignal stops generation promptly.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EngineAbortedError } from '../../src/engine/index.ts';
import { tinyEngine } from './tinyEngine.ts';

test('aborting stops a long generation promptly', async () => {
  const engine = await tinyEngine();
  await engine.generate('warm up', { maxTokens: 2, seed: 1 });
  const controller = new AbortController();
  const started = Date.now();
  setTimeout(() => controller.abort(), 50);
  await assert.rejects(
    engine.generate('how long is unbounded', { maxTokens: 4096, seed: 1, signal: controller.signal }),
    EngineAbortedError,
  );
  const took = Date.now() - started;
  assert.ok(took < 50 + 500, `abort took ${took} ms (4096 tokens take seconds)`);
  // An already-aborted signal never starts.
  await assert.rejects(engine.generate('x', { maxTokens: 8, seed: 1, signal: AbortSignal.abort() }), EngineAbortedError);
  await assert.rejects(engine.embed(['x'], { signal: AbortSignal.abort() }), EngineAbortedError);
  // The engine still works afterwards.
  assert.equal(typeof (await engine.generate('after', { maxTokens: 4, seed: 1 })), 'string');
  await engine.dispose();
});
