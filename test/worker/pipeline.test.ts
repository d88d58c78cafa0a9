// The pipelined worker: a producer claims ahead into a small local buffer,
// an executor keeps the engine busy from it, a completer group-commits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createScriptedEngine, events } from '../helpers/scriptedEngine.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { enqueue, gen, row, spawnWorker, startTestWorker, waitFor } from './fixtures/queue.ts';

test('jobs claimed ahead start one after another, and started_at says when each really started', async () => {
  const db = await createTestDatabase();
  try {
    const ids = await enqueue(db.pool, [gen('sleep:300 a'), gen('sleep:300 b'), gen('sleep:300 c')]);
    // concurrency 1, prefetch 2: the first claim takes all three in one statement.
    // A generous heartbeat timeout: on a loaded machine a 1 s one can expire,
    // and a reclaimed job is claimed again on its own (a new claim time).
    const worker = await startTestWorker(db.url, { concurrency: 1, prefetch: 2, heartbeatTimeout: '10' });
    try {
      const claimed = await waitFor('all three claimed', async () => {
        const rows = await Promise.all(ids.map((id) => row(db.pool, id)));
        return rows.every((r) => r.status !== 'pending') ? rows : null;
      });
      // The one claim took all three: the first went straight to the engine
      // (started_at = the claim time), the two claimed ahead have not started.
      assert.deepEqual(new Set(claimed.map((r) => r.attempt)), new Set([1]));
      assert.ok(claimed[0].started_at instanceof Date, 'the first started at its claim');
      assert.deepEqual([claimed[1].started_at, claimed[2].started_at], [null, null], 'claimed ahead: not started yet');
      assert.ok(worker.stats.running <= 1 && worker.stats.buffered >= 1, JSON.stringify(worker.stats));
      const done = await waitFor('all completed', async () => {
        const rows = await Promise.all(ids.map((id) => row(db.pool, id)));
        return rows.every((r) => r.status === 'completed') ? rows : null;
      });
      // Each engine call sleeps 300 ms and only one runs at a time.
      assert.deepEqual(done.map((r) => r.attempt), [1, 1, 1], 'each ran under its first claim');
      for (let i = 1; i < done.length; i++) {
        const gap = done[i].started_at.getTime() - done[i - 1].started_at.getTime();
        assert.ok(gap >= 299, `job ${i} started ${gap} ms after job ${i - 1}`);
        assert.ok(done[i].completed_at >= done[i].started_at);
      }
    } finally {
      await worker.stop();
    }
  } finally {
    await db.drop();
  }
});

test('embed jobs go to the engine in batches of up to embedBatchSize across claims, even at concurrency 1', async () => {
  const db = await createTestDatabase();
  try {
    const texts = Array.from({ length: 40 }, (_, i) => `micro batch ${i}`);
    const ids = (await db.pool.query(`SELECT steadytext_embed_batch_async($1::text[], use_cache := false) AS ids`, [texts]))
      .rows[0].ids as string[];
    const before = events.length;
    const worker = await startTestWorker(db.url, { concurrency: 1, prefetch: 1, embedBatchSize: 8 });
    try {
      const results = await waitFor('all embedded', async () => {
        const r = await db.pool.query(
          `SELECT request_id, result FROM steadytext_queue WHERE status = 'completed' AND request_id = ANY($1::uuid[])`,
          [ids],
        );
        return r.rows.length === ids.length ? new Map(r.rows.map((x) => [x.request_id as string, x.result as string])) : null;
      });
      const calls = events.slice(before).filter((e) => e.call === 'embed');
      const sizes = calls.map((e) => e.inputs.length);
      console.log(`40 embed jobs at concurrency 1: engine calls of ${sizes.join(', ')} texts`);
      assert.ok(sizes.every((n) => n <= 8), 'no batch exceeds embedBatchSize');
      assert.ok(Math.max(...sizes) > 2, 'a batch holds more than one claim of concurrency + prefetch could bring');
      assert.ok(calls.length < 40);
      const engine = createScriptedEngine();
      for (const [i, id] of ids.entries()) {
        const [v] = await engine.embed([texts[i]]);
        assert.equal(results.get(id), `[${v.join(',')}]`, 'each job gets its own text\'s vector');
      }
    } finally {
      await worker.stop();
    }
  } finally {
    await db.drop();
  }
});

test('a SIGKILLed worker\'s jobs claimed ahead (not started) are back and completed within seconds', async () => {
  const db = await createTestDatabase();
  const victim = spawnWorker(db.url, [
    '--worker-id', 'victim', '--concurrency', '1', '--prefetch', '3',
    '--heartbeat-interval', '0.25', '--heartbeat-timeout', '1',
  ]);
  let rescuer: Awaited<ReturnType<typeof startTestWorker>> | undefined;
  try {
    await victim.started;
    const ids = await enqueue(db.pool, [gen('sleep:60000'), gen('b'), gen('c'), gen('d')].map((j) => ({ ...j, priority: 0 })));
    // The first job blocks the victim's one slot; the other three wait in its buffer.
    await waitFor('victim holds all four', async () => {
      const rows = await Promise.all(ids.map((id) => row(db.pool, id)));
      return rows.every((r) => r.worker_id === 'victim' && r.status === 'processing');
    });
    const engine = { ...createScriptedEngine(), generate: async (p: string) => `rescued:${p}` };
    rescuer = await startTestWorker(db.url, { workerId: 'rescuer', concurrency: 4 }, { engine });
    victim.kill('SIGKILL');
    const killedAt = Date.now();
    assert.equal(await victim.exited, 'SIGKILL');
    await waitFor('all completed by the rescuer', async () => {
      const rows = await Promise.all(ids.map((id) => row(db.pool, id)));
      return rows.every((r) => r.status === 'completed' && r.worker_id === 'rescuer');
    });
    const recovery = (Date.now() - killedAt) / 1000;
    console.log(`recovery of 1 running + 3 buffered jobs after SIGKILL: ${recovery.toFixed(2)} s (heartbeat timeout 1 s)`);
    assert.ok(recovery < 5, `recovered in ${recovery} s`);
  } finally {
    victim.kill('SIGKILL');
    await victim.exited;
    await rescuer?.stop();
    await db.drop();
  }
});

test('on a graceful stop, jobs claimed ahead go back to pending at once, no retry counted', async () => {
  const db = await createTestDatabase();
  try {
    const ids = await enqueue(db.pool, [gen('sleep:1500'), gen('x'), gen('y')]);
    const worker = await startTestWorker(db.url, { concurrency: 1, prefetch: 2 });
    await waitFor('all claimed', async () => {
      const rows = await Promise.all(ids.map((id) => row(db.pool, id)));
      return rows.every((r) => r.status === 'processing');
    });
    await worker.stop();
    const [first, ...rest] = await Promise.all(ids.map((id) => row(db.pool, id)));
    assert.equal(first.status, 'completed', 'the running job finished within the grace period');
    for (const r of rest) assert.deepEqual([r.status, r.retry_count], ['pending', 0]);
  } finally {
    await db.drop();
  }
});

test('--prefetch: auto by default (null), a number of jobs, or auto; bad values name the flag', async () => {
  const { resolveSettings, SettingsError } = await import('../../src/worker/settings.ts');
  const base = { databaseUrl: 'postgres://x/y' };
  assert.equal(resolveSettings(base, {}).prefetch, null);
  assert.equal(resolveSettings({ ...base, prefetch: 'auto' }, {}).prefetch, null);
  assert.equal(resolveSettings({ ...base, prefetch: '0' }, {}).prefetch, 0);
  assert.equal(resolveSettings(base, { STEADYTEXT_WORKER_PREFETCH: '12' }).prefetch, 12);
  assert.throws(() => resolveSettings({ ...base, prefetch: '-1' }, {}), (e: Error) => e instanceof SettingsError && /--prefetch/.test(e.message));
  assert.equal(resolveSettings(base, {}).embedBatchSize, 32);
  assert.throws(() => resolveSettings({ ...base, embedBatchSize: '0' }, {}), /--embed-batch-size/);
});
