// Chaos: among ordinary jobs, jobs that hang past their timeout and jobs whose
// engine call throws. They fail after their retries with the error and
// retry_count recorded; the workers keep serving everything else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { enqueue, gen, type NewJob } from '../worker/fixtures/queue.ts';
import { alive, CHAOS_JOBS, CompletionCounter, drain, killAll, report, startWorkers, verify, type ChaosWorker } from './harness.ts';

test(`hanging and throwing jobs among ${CHAOS_JOBS}, 2 worker processes`, async () => {
  const db = await createTestDatabase();
  const counter = new CompletionCounter(db.url);
  let workers: ChaosWorker[] = [];
  const hangs = Math.max(4, Math.round(CHAOS_JOBS / 200)); // each holds a slot for 2 x 1 s
  const throws = Math.round(CHAOS_JOBS / 20);
  try {
    await counter.start();
    workers = startWorkers(db.url, ['hang-a', 'hang-b']);
    await Promise.all(workers.map((w) => w.started));
    const jobs: NewJob[] = [];
    for (let i = 1; i <= CHAOS_JOBS; i++) {
      if (i % Math.floor(CHAOS_JOBS / hangs) === 0 && jobs.filter((j) => String(j.parameters?.prompt).startsWith('hang')).length < hangs) {
        jobs.push(gen('hang', { timeout_seconds: 1, max_retries: 1 })); // the scripted engine hangs on exactly 'hang'
      } else if (i % 20 === 7) {
        jobs.push(gen(`throw:boom ${i}`, { max_retries: 2 }));
      } else {
        jobs.push(gen(`sleep:5 #${i}`));
      }
    }
    const t0 = Date.now();
    for (let k = 0; k < jobs.length; k += 1000) await enqueue(db.pool, jobs.slice(k, k + 1000));
    await drain(db.pool, 180_000, workers);
    const seconds = (Date.now() - t0) / 1000;
    const out = await verify(db.pool, counter, CHAOS_JOBS, {
      expected: (p) => (p.startsWith('sleep:') ? `echo:${p}` : undefined),
      mayFail: (j) => j.prompt.startsWith('hang') || j.prompt.startsWith('throw:'),
    });
    report('timeout and throw', `${JSON.stringify(out)} in ${seconds.toFixed(1)} s`);
    const f = await db.pool.query<{ prompt: string; error: string; retry_count: number; max_retries: number }>(
      `SELECT parameters->>'prompt' AS prompt, error, retry_count, max_retries FROM steadytext_queue WHERE status = 'failed'`,
    );
    const hung = f.rows.filter((r) => r.prompt.startsWith('hang'));
    const threw = f.rows.filter((r) => r.prompt.startsWith('throw:'));
    assert.equal(hung.length, jobs.filter((j) => String(j.parameters?.prompt).startsWith('hang')).length, 'every hanging job failed');
    assert.equal(threw.length, throws, 'every throwing job failed');
    for (const r of hung) assert.deepEqual([r.error, r.retry_count], ['timed out after 1 s', 1]);
    for (const r of threw) assert.deepEqual([r.error, r.retry_count], [r.prompt.slice('throw:'.length), 2]);
    assert.equal(out.failed, hung.length + threw.length);
    for (const w of workers) assert.ok(alive(w), `${w.name} still running`);
  } finally {
    await killAll(workers);
    await counter.close();
    await db.drop();
  }
});
