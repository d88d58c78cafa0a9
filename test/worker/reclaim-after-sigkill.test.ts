import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createScriptedEngine } from '../helpers/scriptedEngine.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { enqueue, gen, row, spawnWorker, startTestWorker, waitFor } from './fixtures/queue.ts';

test('a SIGKILLed worker process\'s job is reclaimed and completed by another worker within seconds', async () => {
  const db = await createTestDatabase();
  const victim = spawnWorker(db.url, ['--worker-id', 'victim', '--heartbeat-interval', '0.25', '--heartbeat-timeout', '1']);
  let rescuer: Awaited<ReturnType<typeof startTestWorker>> | undefined;
  try {
    await victim.started;
    const [id] = await enqueue(db.pool, [gen('sleep:60000')]);
    await waitFor('victim holds the job', async () => (await row(db.pool, id)).worker_id === 'victim');
    // The rescuer's engine answers at once, so the recovery time is the reclaim time.
    const engine = { ...createScriptedEngine(), generate: async (p: string) => `rescued:${p}` };
    rescuer = await startTestWorker(db.url, { workerId: 'rescuer' }, { engine });
    victim.kill('SIGKILL');
    const killedAt = Date.now();
    assert.equal(await victim.exited, 'SIGKILL');
    const done = await waitFor('completed by the rescuer', async () => {
      const r = await row(db.pool, id);
      return r.status === 'completed' ? r : null;
    });
    const recovery = (Date.now() - killedAt) / 1000;
    console.log(`recovery after SIGKILL: ${recovery.toFixed(2)} s (heartbeat timeout 1 s)`);
    assert.ok(recovery < 5, `recovered in ${recovery} s`);
    assert.equal(done.worker_id, 'rescuer');
    assert.equal(done.result, 'rescued:sleep:60000');
    assert.equal(done.attempt, 2);
    assert.equal(done.retry_count, 1, 'a crash counts as a retry');
    const w = await db.pool.query(`SELECT status FROM steadytext_workers WHERE worker_id = 'victim'`);
    assert.equal(w.rows[0].status, 'dead');
  } finally {
    victim.kill('SIGKILL');
    await victim.exited;
    await rescuer?.stop();
    await db.drop();
  }
});

test('a job that crashes every worker ends failed once its retries are used', async () => {
  const db = await createTestDatabase();
  try {
    const [id] = await enqueue(db.pool, [gen('x', { max_retries: 1 })]);
    // Two claims by workers that vanished (rows absent): reclaim, then fail.
    await db.pool.query(
      `UPDATE steadytext_queue SET status = 'processing', worker_id = 'ghost', attempt = 1, started_at = now() WHERE request_id = $1`,
      [id],
    );
    const { reclaimStale } = await import('../../src/db/jobs/reclaimStale.ts');
    assert.deepEqual(await reclaimStale(db.pool, 3), [{ request_id: id, status: 'pending', lost_worker: 'ghost', started: true }]);
    await db.pool.query(`UPDATE steadytext_queue SET status = 'processing', attempt = 2, started_at = now() WHERE request_id = $1`, [id]);
    assert.deepEqual(await reclaimStale(db.pool, 3), [{ request_id: id, status: 'failed', lost_worker: 'ghost', started: true }]);
    const r = await row(db.pool, id);
    assert.equal(r.retry_count, 1);
    assert.ok(r.failed_at instanceof Date);
    assert.match(r.error, /worker ghost lost/);
    // A live worker's jobs are left alone.
    await db.pool.query(`INSERT INTO steadytext_workers (worker_id, host, pid) VALUES ('alive', 'h', 1)`);
    const [id2] = await enqueue(db.pool, [gen('y')]);
    await db.pool.query(`UPDATE steadytext_queue SET status = 'processing', worker_id = 'alive', attempt = 1 WHERE request_id = $1`, [id2]);
    assert.deepEqual(await reclaimStale(db.pool, 3), []);
  } finally {
    await db.drop();
  }
});
