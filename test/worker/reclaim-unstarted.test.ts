// A worker claims ahead into a local buffer. When it dies, the jobs it was
// running count as failed attempts (a job that kills every worker must end
// 'failed'), but the ones that only waited in its buffer never ran: they go
// back to pending with no retry counted, and complete exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createScriptedEngine } from '../helpers/scriptedEngine.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { enqueue, gen, row, spawnWorker, startTestWorker, waitFor } from './fixtures/queue.ts';

test('a SIGKILLed worker\'s never-started buffered jobs come back without a retry counted and complete once', async () => {
  const db = await createTestDatabase();
  const listener = new pg.Client({ connectionString: db.url });
  const completions = new Map<string, number>();
  const victim = spawnWorker(db.url, [
    '--worker-id', 'victim', '--concurrency', '1', '--prefetch', '3',
    '--heartbeat-interval', '0.25', '--heartbeat-timeout', '1',
  ]);
  let rescuer: Awaited<ReturnType<typeof startTestWorker>> | undefined;
  try {
    await listener.connect();
    listener.on('notification', (n) => {
      const id = (JSON.parse(n.payload ?? '{}') as { request_id?: string }).request_id;
      if (id) completions.set(id, (completions.get(id) ?? 0) + 1);
    });
    await listener.query('LISTEN steadytext_completed');
    await victim.started;
    const ids = await enqueue(db.pool, [gen('sleep:60000'), gen('b'), gen('c'), gen('d')]);
    // The first job holds the victim's one slot; the other three wait in its buffer.
    const held = await waitFor('victim holds all four, the first one started', async () => {
      const rows = await Promise.all(ids.map((id) => row(db.pool, id)));
      return rows.every((r) => r.worker_id === 'victim' && r.status === 'processing') && rows[0].started_at ? rows : null;
    });
    assert.deepEqual(
      held.map((r) => r.started_at === null),
      [false, true, true, true],
      'started_at: set on the running job, NULL on the three claimed ahead',
    );
    victim.kill('SIGKILL');
    assert.equal(await victim.exited, 'SIGKILL');
    const engine = { ...createScriptedEngine(), generate: async (p: string) => `rescued:${p}` };
    rescuer = await startTestWorker(db.url, { workerId: 'rescuer', concurrency: 4 }, { engine });
    const done = await waitFor('all completed by the rescuer', async () => {
      const rows = await Promise.all(ids.map((id) => row(db.pool, id)));
      return rows.every((r) => r.status === 'completed' && r.worker_id === 'rescuer') ? rows : null;
    });
    assert.deepEqual(
      done.map((r) => r.retry_count),
      [1, 0, 0, 0],
      'the running job\'s crash counts; the buffered jobs never ran, so theirs does not',
    );
    assert.deepEqual(done.map((r) => r.attempt), [2, 2, 2, 2], 'each ran under a second claim (the late-result guard moved on)');
    assert.deepEqual(done.map((r) => r.result), ids.map((_, i) => `rescued:${['sleep:60000', 'b', 'c', 'd'][i]}`));
    await waitFor('one completion NOTIFY per job', async () => ids.every((id) => completions.has(id)));
    assert.deepEqual(ids.map((id) => completions.get(id)), [1, 1, 1, 1]);
    const w = await db.pool.query(`SELECT status FROM steadytext_workers WHERE worker_id = 'victim'`);
    assert.equal(w.rows[0].status, 'dead');
  } finally {
    victim.kill('SIGKILL');
    await victim.exited;
    await rescuer?.stop();
    await listener.end();
    await db.drop();
  }
});

test('reclaimStale: a lost worker\'s started job is a failed attempt, its claimed-ahead one goes back untouched', async () => {
  const db = await createTestDatabase();
  try {
    const { reclaimStale } = await import('../../src/db/jobs/reclaimStale.ts');
    const [ran, waited] = await enqueue(db.pool, [gen('ran'), gen('waited')]);
    await db.pool.query(
      `UPDATE steadytext_queue SET status = 'processing', worker_id = 'ghost', attempt = 1,
              started_at = CASE WHEN request_id = $1 THEN now() END
       WHERE request_id = ANY($2::uuid[])`,
      [ran, [ran, waited]],
    );
    const out = await reclaimStale(db.pool, 3);
    assert.deepEqual(
      new Map(out.map((j) => [j.request_id, [j.status, j.started]])),
      new Map([
        [ran, ['pending', true]],
        [waited, ['pending', false]],
      ]),
    );
    const [r, w] = [await row(db.pool, ran), await row(db.pool, waited)];
    assert.deepEqual([r.retry_count, r.attempt, r.status], [1, 1, 'pending']);
    assert.match(r.error, /worker ghost lost/);
    assert.deepEqual([w.retry_count, w.attempt, w.status, w.error], [0, 1, 'pending', null]);
  } finally {
    await db.drop();
  }
});
