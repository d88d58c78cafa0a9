// Chaos on the real engine (node-llama-cpp, the tiny test models): 2 worker
// processes generate; one is SIGKILLed mid-run and restarted under its id.
// Every job completes once, with exactly the text the engine gives for its
// prompt in this process (determinism survives the crash and the re-run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { tinyEngine, TINY_DIR } from '../engine/tinyEngine.ts';
import { executeJob } from '../../src/worker/execute.ts';
import type { Job } from '../../src/interfaces.ts';
import {
  alive, CHAOS_JOBS, CompletionCounter, completedSince, drain, killAll, report, startWorkers, verify, waitFor, type ChaosWorker,
} from './harness.ts';

const JOBS = CHAOS_JOBS;
const PROMPTS = Array.from({ length: 20 }, (_, i) => `chaos prompt ${i}: the queue must lose nothing`);
const ENV = { STEADYTEXT_MODELS: 'tiny', STEADYTEXT_ENGINE_MODULE: '', STEADYTEXT_MODEL_DIR: TINY_DIR, STEADYTEXT_THREADS: '1' };

test(`real engine (tiny models): ${JOBS} generate jobs, 2 worker processes, one SIGKILLed and restarted`, async () => {
  const db = await createTestDatabase();
  const counter = new CompletionCounter(db.url);
  const all: ChaosWorker[] = [];
  // What the engine answers for each prompt, computed here the way the worker runs a job.
  const engine = await tinyEngine();
  const expected = new Map<string, string>();
  try {
    for (const prompt of PROMPTS) {
      const job = { request_id: '', function_name: 'generate', parameters: { prompt, max_tokens: 8, seed: 42 } } as unknown as Job;
      expected.set(prompt, await executeJob(engine, job, new AbortController().signal));
    }
  } finally {
    await engine.dispose();
  }
  try {
    await counter.start();
    all.push(...startWorkers(db.url, ['tiny-a', 'tiny-b'], [], ENV));
    await Promise.all(all.map((w) => w.started));
    const t0 = Date.now();
    await db.pool.query(
      `SELECT steadytext_generate_async(($1::text[])[1 + i % $2], max_tokens := 8, use_cache := false)
       FROM generate_series(1, $3) AS i`,
      [PROMPTS, PROMPTS.length, JOBS],
    );
    await waitFor('a quarter done', async () => {
      const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE status = 'completed'`);
      return r.rows[0].n >= JOBS / 4;
    }, 120_000, 20);
    const victim = all[0];
    victim.kill('SIGKILL');
    const killedAt = new Date();
    await victim.exited;
    const [restarted] = startWorkers(db.url, ['tiny-a'], [], ENV);
    all.push(restarted);
    await restarted.started;
    await drain(db.pool, 240_000, all);
    const seconds = (Date.now() - t0) / 1000;
    const out = await verify(db.pool, counter, JOBS, { expected: (p) => expected.get(p) });
    report('real engine', `${JSON.stringify(out)} in ${seconds.toFixed(1)} s (${(JOBS / seconds).toFixed(0)} jobs/s)`);
    assert.equal(out.completed, JOBS);
    const after = await completedSince(db.pool, killedAt);
    assert.ok((after['tiny-b'] ?? 0) > 0 && alive(all[1]), 'the surviving worker kept going');
    assert.ok(alive(restarted), 'the restarted worker is running');
  } finally {
    await killAll(all);
    await counter.close();
    await db.drop();
  }
});
