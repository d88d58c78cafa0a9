// The spec's Request-Response Pattern: enqueue and wait in the same
// transaction. The caller's row is uncommitted (invisible to workers), so
// steadytext_get_async_result hands a committed copy to the workers over
// dblink and writes the copy's outcome back onto the caller's row. A second
// connection plays the worker, with the same UPDATEs a worker makes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { assertSqlError, claim, complete, enableHandoff, fail } from './helpers.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
  await db.pool.query(`
    CREATE OR REPLACE FUNCTION generate_and_wait(
        prompt TEXT,
        timeout INTEGER DEFAULT 30
    )
    RETURNS TEXT AS $$
    DECLARE
        request_id UUID;
    BEGIN
        -- Queue request
        request_id := steadytext_generate_async(prompt);

        -- Wait for result
        RETURN steadytext_get_async_result(request_id, timeout);
    END;
    $$ LANGUAGE plpgsql;`);
});
after(async () => {
  await db.drop();
});

/** The stand-in worker: waits for a hand-off copy of a pending job and runs `finish` on it. */
async function workerFinishesHandoff(finish: (id: string) => Promise<void>): Promise<string> {
  const end = Date.now() + 8000;
  while (Date.now() < end) {
    const r = await db.pool.query(
      `SELECT request_id, handoff_of FROM steadytext_queue WHERE handoff_of IS NOT NULL AND status = 'pending'`);
    if (r.rows.length > 0) {
      await finish(r.rows[0].request_id);
      return r.rows[0].handoff_of;
    }
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error('no hand-off copy appeared');
}

test('without dblink, waiting on your own uncommitted request says what is needed', async () => {
  const c = await db.connect();
  await c.query('BEGIN');
  await assertSqlError(c, `SELECT generate_and_wait('no dblink', 2)`, [], '0A000', 'dblink', 'uncommitted');
  await c.query('ROLLBACK');
});

test('generate_and_wait in one transaction gets the worker result and commits it on its own row', async () => {
  await enableHandoff(db.pool, db.url);
  const caller = await db.connect();
  await caller.query('BEGIN');
  const waiting = caller.query(`SELECT generate_and_wait('Hello from one transaction', 10) AS r`);
  const original = await workerFinishesHandoff(async (copy) => {
    await claim(db.pool, copy, 'w-handoff');
    await complete(db.pool, copy, 'answer via hand-off');
  });
  assert.equal((await waiting).rows[0].r, 'answer via hand-off');
  // inside the caller's transaction its own row already carries the outcome
  const mine = await caller.query(`SELECT status, result, worker_id, completed_at FROM steadytext_queue WHERE request_id = $1`, [original]);
  assert.equal(mine.rows[0].status, 'completed');
  assert.equal(mine.rows[0].worker_id, 'w-handoff');
  // invisible to everyone else until commit
  assert.equal((await db.pool.query(`SELECT 1 FROM steadytext_queue WHERE request_id = $1`, [original])).rows.length, 0);
  await caller.query('COMMIT');
  const r = await db.pool.query(
    `SELECT q.status, q.result, q.completed_at IS NOT NULL AS done, q.parameters->>'prompt' AS prompt,
            (SELECT count(*)::int FROM steadytext_queue c WHERE c.handoff_of = q.request_id AND c.status = 'completed') AS copies
     FROM steadytext_queue q WHERE q.request_id = $1`,
    [original],
  );
  assert.deepEqual(r.rows[0], { status: 'completed', result: 'answer via hand-off', done: true, prompt: 'Hello from one transaction', copies: 1 });
  // no dblink connection is left open in the caller's session
  assert.deepEqual((await caller.query(`SELECT dblink_get_connections() AS c`)).rows[0].c, null);
});

test('a hand-off whose copy fails raises the failure in the caller', async () => {
  const caller = await db.connect();
  await caller.query('BEGIN');
  const waiting = caller.query(`SELECT generate_and_wait('this will fail', 10) AS r`).then(
    () => null, (e) => e as Error & { code?: string });
  await workerFinishesHandoff(async (copy) => {
    await claim(db.pool, copy);
    await fail(db.pool, copy, 'engine crashed');
  });
  const err = await waiting;
  assert.ok(err);
  assert.equal(err.code, 'STX01');
  assert.match(err.message, /engine crashed/);
  await caller.query('ROLLBACK');
});

test('a hand-off that times out cancels its copy and raises STX03', async () => {
  const caller = await db.connect();
  await caller.query('BEGIN');
  const t0 = Date.now();
  await assertSqlError(caller, `SELECT generate_and_wait('nobody answers', 1)`, [], 'STX03', 'did not finish within 1 seconds');
  assert.ok(Date.now() - t0 < 3000);
  await caller.query('ROLLBACK');
  const copy = await db.pool.query(
    `SELECT status FROM steadytext_queue WHERE parameters->>'prompt' = 'nobody answers' AND handoff_of IS NOT NULL`);
  assert.deepEqual(copy.rows, [{ status: 'cancelled' }]);
  assert.deepEqual((await caller.query(`SELECT dblink_get_connections() AS c`)).rows[0].c, null);
});

test('requests committed by someone else are waited on directly, with no hand-off', async () => {
  const id = (await db.pool.query(`SELECT steadytext_generate_async('committed elsewhere') AS id`)).rows[0].id;
  const caller = await db.connect();
  await caller.query('BEGIN');
  await caller.query(`SELECT steadytext_generate_async('unrelated write')`); // caller has its own xid now
  const waiting = caller.query(`SELECT steadytext_get_async_result($1, 5) AS r`, [id]);
  await new Promise((r) => setTimeout(r, 100));
  await complete(db.pool, id, 'direct');
  assert.equal((await waiting).rows[0].r, 'direct');
  await caller.query('COMMIT');
  const copies = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE handoff_of = $1`, [id]);
  assert.equal(copies.rows[0].n, 0);
});
