// issue 10, item 7: NOTIFY steadytext_cancelled proves nothing (any login may
// send one), so a running job is aborted only when its row is cancelled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { events } from '../helpers/scriptedEngine.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { enqueue, gen, row, startTestWorker, waitFor } from './fixtures/queue.ts';

test('a NOTIFY steadytext_cancelled from a role with no grants does not abort a running job', async () => {
  const db = await createTestDatabase();
  const stranger = `stranger_${randomBytes(4).toString('hex')}`;
  await db.pool.query(`CREATE ROLE ${stranger}`); // no LOGIN needed for SET ROLE, no grants at all
  const worker = await startTestWorker(db.url, { concurrency: 2 });
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const [victim, witness] = await enqueue(db.pool, [gen('hang'), gen('hang')]);
    await waitFor('both running', async () =>
      (await row(db.pool, victim)).status === 'processing' && (await row(db.pool, witness)).status === 'processing');
    const claim = await row(db.pool, victim);

    await c.query(`SET ROLE ${stranger}`);
    assert.equal((await c.query(`SELECT current_user AS u`)).rows[0].u, stranger);
    await c.query(`SELECT pg_notify('steadytext_cancelled', $1)`, [victim]);
    await c.query(`NOTIFY steadytext_cancelled, '${witness}'`); // also forged: the witness row is not cancelled
    await c.query(`RESET ROLE`);

    // A real cancel, sent after the forged ones: once it has reached the
    // engine, the worker has dealt with every NOTIFY sent before it.
    assert.equal((await db.pool.query(`SELECT steadytext_cancel_async($1) AS ok`, [witness])).rows[0].ok, true);
    await waitFor('the real cancel reached the engine', async () =>
      events.find((e) => e.inputs[0] === 'hang' && e.abortedAt !== undefined));

    const aborted = events.filter((e) => e.inputs[0] === 'hang' && e.abortedAt !== undefined);
    assert.equal(aborted.length, 1, 'only the really cancelled job was aborted');
    const v = await row(db.pool, victim);
    assert.equal(v.status, 'processing');
    assert.equal(v.worker_id, claim.worker_id);
    assert.equal(v.attempt, claim.attempt, 'the victim was neither released nor rerun');
    assert.equal(worker.stats.running, 1);

    // Cancelling the victim for real still works.
    assert.equal((await db.pool.query(`SELECT steadytext_cancel_async($1) AS ok`, [victim])).rows[0].ok, true);
    await waitFor('victim aborted', async () =>
      events.filter((e) => e.inputs[0] === 'hang' && e.abortedAt !== undefined).length === 2);
    assert.equal((await row(db.pool, victim)).status, 'cancelled');
  } finally {
    await c.end();
    await worker.stop();
    await db.pool.query(`DROP ROLE IF EXISTS ${stranger}`);
    await db.drop();
  }
});
