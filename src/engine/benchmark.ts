// CPU figures for docs/engine.md:
//   node --import tsx src/engine/benchmark.ts [--models tiny|default] [--threads 1,2,4]
import { parseArgs } from 'node:util';
import { loadEngine, type Engine } from './index.ts';
import type { ModelSet } from './modelSources.ts';

const { values } = parseArgs({ options: { models: { type: 'string', default: 'tiny' }, threads: { type: 'string', default: '1,2,4' } } });

async function time<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await f();
  return [r, performance.now() - t];
}

for (const threads of values.threads!.split(',').map(Number)) {
  const engine: Engine = await loadEngine({ models: values.models as ModelSet, threads, parallel: 1 });
  await engine.generate('warm up', { maxTokens: 4, seed: 1 });
  await engine.embed(['warm up']);
  await engine.rerank('warm', ['up'], '');
  const maxTokens = 128;
  // The regex grammar pins the output length, so tokens/s counts exactly maxTokens tokens.
  const [, gen] = await time(() => engine.generateRegex('Benchmark:', `[a-z]{${maxTokens}}`, { maxTokens, seed: 1 }));
  const texts = Array.from({ length: 20 }, (_, i) => `benchmark sentence number ${i} about queues and PostgreSQL`);
  const [, emb] = await time(() => engine.embed(texts));
  const docs = Array.from({ length: 10 }, (_, i) => `document ${i} talks about topic ${i % 3}`);
  const [, rr] = await time(() => engine.rerank('topic 1', docs, ''));
  console.log(
    `models=${values.models} threads=${threads}: generate ${((maxTokens / gen) * 1000).toFixed(0)} tokens/s ` +
      `(${maxTokens} tokens in ${gen.toFixed(0)} ms), embed ${(emb / texts.length).toFixed(2)} ms/text, ` +
      `rerank ${(rr / docs.length).toFixed(2)} ms/document (${rr.toFixed(1)} ms for ${docs.length})`,
  );
  await engine.dispose();
}
