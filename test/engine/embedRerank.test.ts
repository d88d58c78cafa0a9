// Embeddings: fixed dimension, unit norm. Rerank: stable, best first, index maps back.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { EngineInputError, type Engine } from '../../src/engine/index.ts';
import { tinyEngine } from './tinyEngine.ts';

let engine: Engine;
before(async () => {
  engine = await tinyEngine();
});
after(() => engine.dispose());

test('embeddings have one fixed dimension and unit L2 norm', async () => {
  const texts = ['hello', 'a much longer text about PostgreSQL and queues', '東京', 'x'];
  const vectors = await engine.embed(texts);
  assert.equal(vectors.length, texts.length);
  const dim = vectors[0].length;
  assert.ok(dim > 0);
  for (const v of vectors) {
    assert.equal(v.length, dim);
    const norm = Math.hypot(...v);
    assert.ok(Math.abs(norm - 1) < 1e-6, `norm ${norm}`);
  }
  assert.deepEqual(await engine.embed(['hello']), [vectors[0]]);
  await assert.rejects(engine.embed(['']), EngineInputError);
});

test('rerank is stable, sorted best first, and indexes map back to the input', async () => {
  const docs = ['dogs bark at night', 'cats purr softly', 'the stock market fell', 'kittens are young cats', 'PostgreSQL queues'];
  const a = await engine.rerank('cats', docs, '');
  const b = await engine.rerank('cats', docs, '');
  assert.deepEqual(b, a);
  assert.equal(a.length, docs.length);
  for (let i = 1; i < a.length; i++) assert.ok(a[i - 1].score >= a[i].score);
  assert.deepEqual(a.map((r) => r.index).sort(), [0, 1, 2, 3, 4]);
  for (const r of a) assert.equal(r.document, docs[r.index]);
  assert.equal(new Set(a.map((r) => r.score)).size > 1, true, 'scores should differ');
  const withTask = await engine.rerank('cats', docs, 'Find documents about pets');
  assert.deepEqual(await engine.rerank('cats', docs, 'Find documents about pets'), withTask);
  assert.deepEqual(await engine.rerank('cats', [], ''), []);
});

test("a text longer than the model's context is refused as the input's fault (EngineInputError), naming only its own length", async () => {
  // The tiny models take about one token per byte; their context is 4096.
  const long = Array.from({ length: 1500 }, (_, i) => `w${i % 50}`).join(' ');
  for (const texts of [['short', long], [long]]) {
    await assert.rejects(engine.embed(texts), (err: Error) => {
      assert.ok(err instanceof EngineInputError, String(err));
      assert.match(err.message, /^the text is too long for the embedding model: \d+ tokens, at most 4095 fit its context$/);
      return true;
    });
  }
  // A document too long for the reranker's context is the input's fault too.
  await assert.rejects(engine.rerank('q', ['fine', long], ''), (err: Error) => {
    assert.ok(err instanceof EngineInputError, String(err));
    assert.match(err.message, /^rerank: a document is too long for the reranking model/);
    return true;
  });
});

test('generation and rerank report their output as it grows (onProgress): once per token, once per ranked document', async () => {
  let tokens = 0;
  await engine.generate('count me', { maxTokens: 8, seed: 1, onProgress: () => tokens++ });
  assert.ok(tokens >= 1 && tokens <= 8, `${tokens} progress calls for at most 8 tokens`);
  let ranked = 0;
  await engine.rerank('cats', ['a', 'b', 'c'], '', { onProgress: () => ranked++ });
  assert.equal(ranked, 3);
});
