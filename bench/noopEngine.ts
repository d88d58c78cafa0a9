// BENCHMARK ONLY: an Engine that does no inference, so `npm run bench`
// measures the queue's own cost per job (claim, complete, NOTIFY) and nothing
// else. Loaded by worker processes through STEADYTEXT_ENGINE_MODULE. Never use
// it to serve real requests: every answer is a constant.
//
// Instrumentation (all optional, all cheap):
//   BENCH_FIRST_FILE  the high-resolution epoch ms of the first engine call is
//                     written there once (burn-down start time).
//   IPC channel       when the process was spawned with one and
//                     BENCH_REPORT_JOBS=1, every call sends
//                     {id: prompt, start, end} (latency samples).
//   BENCH_EMBED_DIMENSIONS  embed answers a vector of this many dimensions
//                     (bench/lib/vectors.ts: fixed pseudo-random float32
//                     values, the same for every text) instead of [1, 0, 0, 0];
//                     the backfill scenario's 1024-dimension rows.
import { writeFileSync } from 'node:fs';
import type { Engine, EngineFactory } from '../src/engine/types.ts';
import { benchVector } from './lib/vectors.ts';

const now = () => performance.timeOrigin + performance.now();
const firstFile = process.env.BENCH_FIRST_FILE;
const report = process.env.BENCH_REPORT_JOBS === '1' && typeof process.send === 'function';
let seen = false;
const dimensions = Number(process.env.BENCH_EMBED_DIMENSIONS ?? 0);
if (!Number.isInteger(dimensions) || dimensions < 0) throw new Error(`BENCH_EMBED_DIMENSIONS=${process.env.BENCH_EMBED_DIMENSIONS}: a whole number`);
// one vector for every text, made once: the engine stays a no-op
const VECTOR = dimensions > 0 ? benchVector(dimensions) : [1, 0, 0, 0];

function ran(id: string, start: number): void {
  if (!seen) {
    seen = true;
    if (firstFile) writeFileSync(firstFile, String(start));
  }
  if (report) process.send!({ id, start, end: now() });
}

const noopEngine: EngineFactory = async (): Promise<Engine> => ({
  modelId: (role) => `bench-noop-${role}`,
  async generate(prompt) {
    ran(prompt, now());
    return 'ok';
  },
  async generateJson(prompt) {
    ran(prompt, now());
    return {};
  },
  async generateRegex(prompt) {
    ran(prompt, now());
    return 'ok';
  },
  async generateChoice(prompt, choices) {
    ran(prompt, now());
    return choices[0];
  },
  async embed(texts) {
    ran(texts[0] ?? '', now());
    return texts.map(() => VECTOR);
  },
  async rerank(query, documents) {
    ran(query, now());
    return documents.map((document, index) => ({ document, index, score: 0 }));
  },
  async dispose() {},
});

export default noopEngine;
