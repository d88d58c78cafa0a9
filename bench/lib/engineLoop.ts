// The plain loop both engine scenarios time: `width` texts per embed call,
// or `width` generate calls in flight, over `inputs`, with no queue between.
import type { Engine, GenerateOptions } from '../../src/engine/types.ts';
import { now } from './stats.ts';

export const texts = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => `${tag} ${i}: the quick brown fox jumps over the lazy dog near the river bank`);

/** Seconds taken and generated tokens (counted by `count`); `generate` picks the call (default: plain generate). */
export async function engineLoop(
  engine: Engine,
  kind: 'embed' | 'generate',
  width: number,
  inputs: string[],
  maxTokens: number,
  count: (t: string) => number,
  generate: (engine: Engine, prompt: string, opts: GenerateOptions) => Promise<string> = (e, p, o) => e.generate(p, o),
): Promise<{ seconds: number; tokens: number }> {
  let tokens = 0;
  const t0 = now();
  for (let i = 0; i < inputs.length; i += width) {
    const part = inputs.slice(i, i + width);
    if (kind === 'embed') await engine.embed(part);
    else {
      const outs = await Promise.all(part.map((p) => generate(engine, p, { maxTokens, seed: 42 })));
      for (const o of outs) tokens += count(o);
    }
  }
  return { seconds: (now() - t0) / 1000, tokens };
}
