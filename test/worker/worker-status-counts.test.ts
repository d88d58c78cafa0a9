// steadytext_worker_status().jobs_completed / jobs_failed agree with the
// queue the moment the results are visible, as the README's query right
// after a few jobs expects: the statements that record the outcomes count
// them (one update of the worker's row per completed group), not the next
// heartbeat. The heartbeat here is a minute apart, so it cannot help.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestDatabase } from '../helpers/db.ts';
import { enqueue, gen, startTestWorker, waitFor } from './fixtures/queue.ts';

const workerStatus = async (db: { pool: import('pg').Pool }) =>
  (await db.pool.query(`SELECT jobs_completed::int, jobs_failed::int, status FROM steadytext_worker_status()`)).rows;

test('jobs_completed and jobs_failed are exact as soon as the results are visible, without a heartbeat', async () => {
  const db = await createTestDatabase();
  const worker = await startTestWorker(db.url, { concurrency: 2, heartbeatInterval: '60', heartbeatTimeout: '120' });
  try {
    assert.deepEqual(await workerStatus(db), [{ jobs_completed: 0, jobs_failed: 0, status: 'running' }]);
    const ids = await enqueue(db.pool, [
      gen('one'), gen('two'), gen('three'), gen('sleep:50'),
      gen('throw:no luck', { max_retries: 0 }),
      gen('bad-input:never valid', { max_retries: 5 }),
    ]);
    await waitFor('every job ended', async () =>
      (await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE status IN ('completed', 'failed')`)).rows[0].n === ids.length);
    // Read at once, no wait: what the README's query would show now.
    assert.deepEqual(await workerStatus(db), [{ jobs_completed: 4, jobs_failed: 2, status: 'running' }]);

    // A retried attempt is not a failed job; its later completion counts.
    const dir = mkdtempSync(path.join(tmpdir(), 'st-counts-'));
    const gate = path.join(dir, 'failing');
    writeFileSync(gate, '');
    const [flaky] = await enqueue(db.pool, [gen(`fail-while-file:${gate}`, { max_retries: 1000 })]);
    const state = async () => (await db.pool.query(`SELECT status, retry_count FROM steadytext_queue WHERE request_id = $1`, [flaky])).rows[0];
    await waitFor('an attempt failed and will be retried', async () => (await state()).retry_count >= 1);
    assert.deepEqual(await workerStatus(db), [{ jobs_completed: 4, jobs_failed: 2, status: 'running' }]);
    rmSync(dir, { recursive: true, force: true });
    await waitFor('the retried job completed', async () => (await state()).status === 'completed');
    assert.deepEqual(await workerStatus(db), [{ jobs_completed: 5, jobs_failed: 2, status: 'running' }]);
  } finally {
    await worker.stop();
  }
  try {
    // Stopping keeps the counts (markWorkerStopped no longer writes them).
    assert.deepEqual(await workerStatus(db), [{ jobs_completed: 5, jobs_failed: 2, status: 'stopped' }]);
    assert.equal(worker.stats.jobsCompleted, 5);
    assert.equal(worker.stats.jobsFailed, 2);
  } finally {
    await db.drop();
  }
});
