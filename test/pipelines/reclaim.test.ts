// A killed worker's pipeline rows (the batch on its engine and the one it
// claimed ahead) are taken back by a live worker's reclaim and computed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createScriptedEngine } from '../helpers/scriptedEngine.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { column, createDocuments, createPipeline, spawnWorker, startTestWorker, status, waitFor } from './fixtures.ts';
import type { Worker } from '../../src/worker/index.ts';

test('a SIGKILLed worker\'s pipeline rows, running and claimed ahead, are reclaimed and computed by another worker', async () => {
  const db = await createTestDatabase();
  await createDocuments(db.pool, ['hang', 'hang', 'hang', 'hang']);
  const victim = spawnWorker(db.url, [
    '--worker-id', 'victim', '--concurrency', '1', '--pipeline-batch-size', '2',
    '--heartbeat-interval', '0.25', '--heartbeat-timeout', '1',
  ]);
  let rescuer: Worker | undefined;
  try {
    await victim.started;
    await createPipeline(db.pool, { name: 'doc_embeddings' });
    // 'hang' holds the victim's engine: two rows on it, two claimed ahead.
    await waitFor('the victim holds all four rows', async () => {
      const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_pipeline_rows WHERE status = 'processing' AND worker_id = 'victim'`);
      return r.rows[0].n === 4;
    });
    victim.kill('SIGKILL');
    assert.equal(await victim.exited, 'SIGKILL');
    const engine = { ...createScriptedEngine(), embed: async (texts: string[]) => texts.map(() => [0, 1, 0, 0]) };
    rescuer = await startTestWorker(db.url, { workerId: 'rescuer' }, { engine });
    let reclaimed = 0;
    rescuer.events.on('pipelineReclaimed', (n) => (reclaimed += n));
    await waitFor('every row computed by the rescuer', async () => {
      const s = await status(db.pool, 'doc_embeddings');
      return s.done === 4 && s.processing === 0;
    });
    assert.deepEqual([...(await column(db.pool, 'embedding')).values()], [[0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]]);
    assert.equal(reclaimed, 4, 'the rescuer\'s reclaim took back the four rows');
    assert.equal(rescuer.stats.pipelineRows.written, 4);
  } finally {
    victim.kill('SIGKILL');
    await victim.exited;
    await rescuer?.stop();
    await db.drop();
  }
});

test('a worker restarted under the same --worker-id right after a crash takes back the rows the crashed process held', async () => {
  const db = await createTestDatabase();
  await createDocuments(db.pool, ['hang', 'hang']);
  // A long heartbeat timeout: no reclaim by the heartbeat rule comes to help.
  const first = spawnWorker(db.url, ['--worker-id', 'fixed-id', '--pipeline-batch-size', '2', '--heartbeat-timeout', '60']);
  let restarted: Worker | undefined;
  try {
    await first.started;
    await createPipeline(db.pool, { name: 'doc_embeddings' });
    await waitFor('the first process holds both rows', async () => {
      const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_pipeline_rows WHERE status = 'processing' AND worker_id = 'fixed-id'`);
      return r.rows[0].n === 2;
    });
    first.kill('SIGKILL');
    assert.equal(await first.exited, 'SIGKILL');
    const engine = { ...createScriptedEngine(), embed: async (texts: string[]) => texts.map(() => [0, 0, 1, 0]) };
    restarted = await startTestWorker(db.url, { workerId: 'fixed-id', heartbeatTimeout: '60' }, { engine });
    await waitFor('both rows computed by the restarted worker', async () => (await status(db.pool, 'doc_embeddings')).done === 2);
    assert.deepEqual([...(await column(db.pool, 'embedding')).values()], [[0, 0, 1, 0], [0, 0, 1, 0]]);
  } finally {
    first.kill('SIGKILL');
    await first.exited;
    await restarted?.stop();
    await db.drop();
  }
});
