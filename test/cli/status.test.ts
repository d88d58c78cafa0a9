// `steadytext status`: the queue and the workers as tables, --json, --watch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { startTestWorker, waitFor } from '../worker/fixtures/queue.ts';
import { runCli, startCli } from './fixtures/cli.ts';

// db.drop() ends the pool, then DROP DATABASE ... WITH (FORCE): a backend still closing
// reports 57P01 to its (removed) client, which the pool re-emits; without a listener
// that would be an uncaught exception in whichever test runs next.
const ignoreDropError = () => {};

test('status shows queue counts per function and status, and the live workers', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const env = { DATABASE_URL: db.url };
  try {
    const empty = await runCli(['status'], env);
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(empty.stdout, /^queue: empty$/m);
    assert.match(empty.stdout, /^workers: none seen in the last hour/m);

    const worker = await startTestWorker(db.url, { workerId: 'cli-status-worker' });
    try {
      await db.pool.query(`SELECT steadytext_generate_batch_async(ARRAY['a','b','c'], use_cache := false)`);
      await db.pool.query(`SELECT steadytext_embed_async('e', use_cache := false)`);
      await waitFor('4 completed', async () =>
        (await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE status = 'completed'`)).rows[0].n === 4);
    } finally {
      // stopped, so the pending row below stays pending
      await worker.stop();
    }
    await db.pool.query(`SELECT steadytext_generate_async('waiting', use_cache := false)`);

    const r = await runCli(['status'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^queue: 5 requests$/m);
    const row = (fn: string, status: string) =>
      r.stdout.split('\n').find((l) => new RegExp(`│ ${fn}\\s+│ ${status}\\s+│`).test(l));
    assert.match(row('generate', 'completed') ?? '', /│\s+3 │/);
    assert.match(row('embed', 'completed') ?? '', /│\s+1 │/);
    assert.match(row('generate', 'pending') ?? '', /│\s+1 │\s+\d+\.\d+ │/, 'pending row with its age');
    assert.match(r.stdout, /^workers: 0 running of 1 seen in the last hour$/m);
    assert.match(r.stdout, /│ cli-status-worker\s+│.*│ stopped\s+│\s+0 │\s+4 │\s+0 │ .* ago │/);
    assert.ok(!/\x1b\[/.test(r.stdout), 'no colour codes when stdout is not a terminal');

    const j = await runCli(['status', '--json'], env);
    assert.equal(j.code, 0);
    const snap = JSON.parse(j.stdout);
    assert.deepEqual(Object.keys(snap), ['queue', 'workers', 'unserved']);
    assert.deepEqual(snap.unserved, [], 'no live worker: nothing to say about unserved types');
    const gen = snap.queue.find((q: { function_name: string; status: string }) => q.function_name === 'generate' && q.status === 'completed');
    assert.equal(gen.count, 3);
    assert.equal(typeof gen.avg_processing_seconds, 'number');
    assert.equal(snap.workers[0].worker_id, 'cli-status-worker');
    assert.equal(snap.workers[0].jobs_completed, 4);
    assert.equal(snap.workers[0].status, 'stopped');
    assert.ok(!Number.isNaN(Date.parse(snap.workers[0].last_heartbeat)));
  } finally {
    await db.drop();
  }
});

test('status --watch refreshes until stopped; --json --watch prints one snapshot per line', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const env = { DATABASE_URL: db.url };
  try {
    const cli = startCli(['status', '--watch', '0.2', '--json'], env);
    await waitFor('first snapshot', async () => cli.stdout().includes('\n'), 10_000);
    await db.pool.query(`SELECT steadytext_generate_async('new', use_cache := false)`);
    await waitFor('a snapshot with the new request', async () => cli.stdout().includes('"count":1'), 5000);
    cli.kill('SIGINT');
    const r = await cli.result;
    assert.equal(r.code, 0);
    const snaps = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.ok(snaps.length >= 2);
    assert.deepEqual(snaps[0].queue, []);
    assert.equal(snaps.at(-1).queue[0].status, 'pending');

    const text = startCli(['status', '--watch', '0.2'], env);
    await waitFor('two frames', async () => text.stdout().split('queue: 1 request').length > 2, 10_000);
    text.kill('SIGINT');
    assert.equal((await text.result).code, 0);

    const bad = await runCli(['status', '--watch', 'soon'], env);
    assert.equal(bad.code, 2);
  } finally {
    await db.drop();
  }
});
