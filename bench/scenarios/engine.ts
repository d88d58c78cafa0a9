// Scenario 5: the real engine (llama.cpp) on the tiny test model (STEADYTEXT_MODELS=tiny),
// through the queue (one worker process) versus a plain loop calling the engine
// in this process; and how throughput grows with batch / concurrency.
import pg from 'pg';
import { loadEngine, resolveSettings, type Engine } from '../../src/engine/index.ts';
import { getCpuLlama } from '../../src/engine/llamaEngine.ts';
import { ensureTinyModel } from '../../src/engine/tinyModels.ts';
import { engineLoop, texts } from '../lib/engineLoop.ts';
import { round, now } from '../lib/stats.ts';
import type { QueueSystem } from '../lib/systems.ts';
import type { Progress } from './queue.ts';

export interface EngineRun {
  kind: 'embed' | 'generate';
  path: 'direct' | 'queue';
  /** direct: texts per engine.embed call / generate calls in flight; queue: worker --concurrency */
  width: number;
  items: number;
  tokens?: number;
  seconds: number;
  perSecond: number;
}


async function viaQueue(
  sys: QueueSystem,
  kind: 'embed' | 'generate',
  width: number,
  inputs: string[],
  maxTokens: number,
  count: (t: string) => number,
  progress: Progress,
) {
  const db = new pg.Client({ connectionString: sys.url });
  await db.connect();
  const listener = new pg.Client({ connectionString: sys.url });
  await listener.connect();
  const done = new Set<string>();
  let wake: (() => void) | undefined;
  listener.on('notification', (n) => {
    done.add((JSON.parse(n.payload ?? '{}') as { request_id: string }).request_id);
    wake?.();
  });
  await listener.query('LISTEN steadytext_completed');
  await sys.reset(db);
  const proc = sys.spawn({
    concurrency: width,
    engineModule: null,
    env: { STEADYTEXT_MODELS: 'tiny', STEADYTEXT_ENGINE_PARALLEL: String(Math.max(2, width)), STEADYTEXT_WORKER_LOG_LEVEL: 'info' },
  });
  const enqueue = async (items: string[]): Promise<string[]> => {
    const r =
      kind === 'embed'
        ? await db.query<{ ids: string[] }>('SELECT steadytext_embed_batch_async($1::text[], use_cache => false) AS ids', [items])
        : await db.query<{ ids: string[] }>(
            'SELECT steadytext_generate_batch_async($1::text[], max_tokens => $2, use_cache => false) AS ids',
            [items, maxTokens],
          );
    return r.rows[0].ids;
  };
  const waitAll = async (ids: string[], label?: string) => {
    const limitS = Number(process.env.BENCH_ENGINE_TIMEOUT ?? 300);
    const deadline = now() + limitS * 1000;
    for (;;) {
      const left = ids.filter((id) => !done.has(id)).length;
      if (label) progress(label, ids.length - left, ids.length);
      if (left === 0) return;
      if (proc.child.exitCode !== null) throw new Error(`worker exited:\n${proc.output()}`);
      if (now() > deadline) {
        const st = await db.query('SELECT status, count(*)::int AS n, min(error) AS error FROM steadytext_queue WHERE request_id = ANY($1::uuid[]) GROUP BY 1', [ids]);
        throw new Error(`queue ${kind}: ${left} jobs not done in ${limitS} s: ${JSON.stringify(st.rows)}\n${proc.output()}`);
      }
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 200);
      });
    }
  };
  try {
    // warm-up: model load and context creation happen here, off the clock
    await waitAll(await enqueue(texts(Math.max(width * 2, 8), `warm ${kind}`)));
    const t0 = now();
    const ids = await enqueue(inputs);
    await waitAll(ids, `engine ${kind} queue c=${width}`);
    const seconds = (now() - t0) / 1000;
    let tokens = 0;
    if (kind === 'generate') {
      const r = await db.query<{ result: string }>('SELECT result FROM steadytext_queue WHERE request_id = ANY($1::uuid[])', [ids]);
      for (const row of r.rows) tokens += count(row.result);
    }
    const failed = await db.query(
      "SELECT count(*)::int AS n, min(error) AS e FROM steadytext_queue WHERE request_id = ANY($1::uuid[]) AND status <> 'completed'",
      [ids],
    );
    if (failed.rows[0].n > 0) throw new Error(`queue ${kind}: ${failed.rows[0].n} jobs not completed: ${failed.rows[0].e}`);
    return { seconds, tokens };
  } finally {
    await proc.stop();
    await listener.end();
    await sys.reset(db);
    await db.end();
  }
}

export async function engineScenario(
  sys: QueueSystem,
  opts: { embedTexts: number; prompts: number; maxTokens: number; widths: number[] },
  progress: Progress,
): Promise<EngineRun[]> {
  const settings = resolveSettings({ models: 'tiny' });
  const llama = await getCpuLlama();
  const tokenizer = await llama.loadModel({ modelPath: ensureTinyModel('generation', settings.modelDir) });
  const count = (t: string) => tokenizer.tokenize(t, false).length;
  const runs: EngineRun[] = [];
  const embedInputs = texts(opts.embedTexts, 'embed');
  const genInputs = texts(opts.prompts, 'prompt');
  const add = (kind: 'embed' | 'generate', path: 'direct' | 'queue', width: number, r: { seconds: number; tokens: number }) => {
    const items = kind === 'embed' ? opts.embedTexts : opts.prompts;
    runs.push({
      kind,
      path,
      width,
      items,
      ...(kind === 'generate' ? { tokens: r.tokens } : {}),
      seconds: round(r.seconds),
      perSecond: round(kind === 'embed' ? items / r.seconds : r.tokens / r.seconds, 1),
    });
  };
  for (const width of opts.widths) {
    // direct: a fresh engine per width (parallel contexts = width, like the worker below)
    const engine = await loadEngine({ models: 'tiny', modulePath: undefined, parallel: Math.max(2, width) });
    try {
      await engineLoop(engine, 'embed', width, texts(Math.max(width * 2, 8), 'warm'), opts.maxTokens, count);
      await engineLoop(engine, 'generate', width, texts(Math.max(width * 2, 8), 'warm'), opts.maxTokens, count);
      progress(`engine direct w=${width}`, 0, 2);
      add('embed', 'direct', width, await engineLoop(engine, 'embed', width, embedInputs, opts.maxTokens, count));
      progress(`engine direct w=${width}`, 1, 2);
      add('generate', 'direct', width, await engineLoop(engine, 'generate', width, genInputs, opts.maxTokens, count));
      progress(`engine direct w=${width}`, 2, 2);
    } finally {
      await engine.dispose();
    }
    add('embed', 'queue', width, await viaQueue(sys, 'embed', width, embedInputs, opts.maxTokens, count, progress));
    add('generate', 'queue', width, await viaQueue(sys, 'generate', width, genInputs, opts.maxTokens, count, progress));
  }
  await tokenizer.dispose();
  return runs;
}
