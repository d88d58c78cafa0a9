import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { enqueue, gen, row, spawnWorker, waitFor } from './fixtures/queue.ts';

test('SIGTERM: running jobs finish within the grace period, the rest go back to pending, exit 0', async () => {
  const db = await createTestDatabase();
  const proc = spawnWorker(db.url, ['--worker-id', 'graceful', '--concurrency', '2', '--shutdown-grace', '1']);
  try {
    await proc.started;
    const [quick, hang] = await enqueue(db.pool, [gen('sleep:400'), gen('hang')]);
    await waitFor('both running', async () =>
      (await row(db.pool, quick)).status === 'processing' && (await row(db.pool, hang)).status === 'processing');
    const [waiting] = await enqueue(db.pool, [gen('queued behind')]);
    const t0 = Date.now();
    proc.kill('SIGTERM');
    assert.equal(await proc.exited, 0);
    const took = Date.now() - t0;
    assert.ok(took < 4000, `stopped in ${took} ms (grace 1 s)`);
    assert.match(proc.stdout(), /worker graceful stopped/);
    const q = await row(db.pool, quick);
    assert.equal(q.status, 'completed', 'a job that fits in the grace period finishes');
    const h = await row(db.pool, hang);
    assert.equal(h.status, 'pending', 'a job still running at the end of the grace period is released');
    assert.equal(h.retry_count, 0, 'a release is not a retry');
    assert.ok(h.run_at <= new Date());
    assert.equal((await row(db.pool, waiting)).status, 'pending', 'no claim after SIGTERM');
    const w = await db.pool.query(`SELECT status, current_jobs, jobs_completed::int FROM steadytext_workers`);
    assert.deepEqual(w.rows, [{ status: 'stopped', current_jobs: 0, jobs_completed: 1 }]);
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    await db.drop();
  }
});
