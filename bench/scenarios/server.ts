// Scenario "server": the same tiny GGUF models through llama.cpp's llama-server
// (the HTTP engine) versus the local engine (node-llama-cpp in this process),
// at widths 1/4/16, as ratios server/local. Embeddings: texts per second with
// `width` texts per embed call. Generation: tokens per second with `width`
// calls in flight; regex-constrained, because llama-server answers HTTP 500
// to the tiny model's unconstrained (non-UTF-8) output (docs/engine.md).
// The llama-server binary: $STEADYTEXT_TEST_LLAMA_SERVER or the cache
// .ci/llama-server.sh fills; without it the scenario says so and is skipped.
import { HttpEngine } from '../../src/engine/httpEngine.ts';
import { loadEngine, resolveSettings, type Engine } from '../../src/engine/index.ts';
import { getCpuLlama } from '../../src/engine/llamaEngine.ts';
import { ensureTinyModel } from '../../src/engine/tinyModels.ts';
import { findLlamaServer, LlamaServer } from '../../test/engine/httpServers.ts';
import { engineLoop, texts } from '../lib/engineLoop.ts';
import { round } from '../lib/stats.ts';
import type { Progress } from './queue.ts';

export interface ServerRun {
  kind: 'embed' | 'generate';
  width: number;
  items: number;
  /** Texts/s (embed) or generated tokens/s (generate). */
  local: number;
  server: number;
  /** server / local. */
  ratio: number;
}

/** Any lowercase text: the grammar never ends the output early, so every call runs to max tokens or EOS. */
const PATTERN = '[a-z ]{1,400}';

/** Texts/s (embed) or tokens/s (generate, regex-constrained) of the plain loop. */
async function measure(engine: Engine, kind: 'embed' | 'generate', width: number, inputs: string[], maxTokens: number, count: (t: string) => number) {
  const { seconds, tokens } = await engineLoop(engine, kind, width, inputs, maxTokens, count, (e, p, o) => e.generateRegex(p, PATTERN, o));
  return kind === 'embed' ? inputs.length / seconds : tokens / seconds;
}

export async function serverScenario(
  opts: { embedTexts: number; prompts: number; maxTokens: number; widths: number[] },
  progress: Progress,
  say: (line: string) => void,
): Promise<ServerRun[]> {
  const found = findLlamaServer();
  if (!found.path) {
    say(`server: skipped (${found.reason})`);
    return [];
  }
  const parallel = Math.max(...opts.widths);
  // One thread per slot decode on this class of machine (docs/engine.md); the server batches its slots.
  const [gen, emb] = await Promise.all([
    LlamaServer.start(found.path, 'generation', ['-np', String(parallel), '-c', String(parallel * 512)]),
    LlamaServer.start(found.path, 'embedding', ['-np', String(parallel), '-c', String(parallel * 512), '-b', '2048', '-ub', '2048']),
  ]);
  const settings = resolveSettings({ models: 'tiny' });
  const llama = await getCpuLlama();
  const tokenizer = await llama.loadModel({ modelPath: ensureTinyModel('generation', settings.modelDir) });
  const count = (t: string) => tokenizer.tokenize(t, false).length;
  const runs: ServerRun[] = [];
  try {
    for (const width of opts.widths) {
      const local = await loadEngine({ models: 'tiny', modulePath: undefined, parallel: Math.max(2, width) });
      const remote = await HttpEngine.connect({
        generation: gen.backend({ maxInFlight: width }),
        embedding: emb.backend({ maxInFlight: width, embedBatchSize: Math.max(width, 1) }),
      });
      try {
        for (const kind of ['embed', 'generate'] as const) {
          const inputs = kind === 'embed' ? texts(opts.embedTexts, 'embed') : texts(opts.prompts, 'prompt');
          const warm = texts(Math.max(width * 2, 8), 'warm');
          await measure(local, kind, width, warm, opts.maxTokens, count);
          await measure(remote, kind, width, warm, opts.maxTokens, count);
          progress(`server ${kind} w=${width}`, 0, 2);
          const l = await measure(local, kind, width, inputs, opts.maxTokens, count);
          progress(`server ${kind} w=${width}`, 1, 2);
          const s = await measure(remote, kind, width, inputs, opts.maxTokens, count);
          progress(`server ${kind} w=${width}`, 2, 2);
          runs.push({ kind, width, items: inputs.length, local: round(l, 1), server: round(s, 1), ratio: round(s / l, 2) });
        }
      } finally {
        await local.dispose();
        await remote.dispose();
      }
    }
  } finally {
    await tokenizer.dispose();
    await Promise.all([gen.kill(), emb.kill()]);
  }
  say(
    'server vs local (tiny models): ' +
      runs.map((r) => `${r.kind} w${r.width} ${r.server}/${r.local} ${r.kind === 'embed' ? 'texts' : 'tokens'}/s = ${r.ratio}x`).join(', '),
  );
  return runs;
}
