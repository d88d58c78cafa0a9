// Pipeline SQL behaviours found while testing faults (docs/pipelines.md,
// "Worker surface"), each the smallest case, driven with the worker's own
// calls: a session that holds a claimed row locked while the worker writes
// or gives back its batch, then rolls back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { claimBatch, publishModels, writeBatch, type ClaimedBatch } from './simulatedWorker.ts';
import { waitFor } from '../worker/fixtures/queue.ts';

/**
 * A pipeline over documents(1..3), a live worker 'w1' (heartbeat now) holding
 * all three rows, and a second session that has changed document 1's input
 * (or deleted it) in a transaction still open: the trigger's mark holds the
 * row's steadytext_pipeline_rows entry locked.
 */
async function lockedDuringWrite(change: string) {
  const db = await createTestDatabase();
  await db.pool.query(`CREATE TABLE documents (id integer PRIMARY KEY, body text, emb real[])`);
  await db.pool.query(`INSERT INTO documents VALUES (1, 'one', NULL), (2, 'two', NULL), (3, 'three', NULL)`);
  await db.pool.query(`SELECT steadytext_pipeline_create('p', 'documents', 'body', 'emb')`);
  await db.pool.query(`INSERT INTO steadytext_workers (worker_id, host, pid) VALUES ('w1', 'test', 1)`);
  await publishModels(db.pool);
  const batch = (await claimBatch(db.pool, 'w1', 10))!;
  assert.equal(batch.rows.length, 3);
  const user = await db.connect();
  await user.query('BEGIN');
  await user.query(change);
  return { db, batch, user };
}

/** Claims and writes whatever is claimable until row `[id]` is done; fails after `ms`. */
async function eventuallyDone(db: Awaited<ReturnType<typeof lockedDuringWrite>>['db'], id: number, ms: number): Promise<void> {
  await waitFor(
    `row [${id}] claimed again and written`,
    async () => {
      await db.pool.query(`SELECT _steadytext_pipeline_reclaim()`);
      const b: ClaimedBatch | undefined = await claimBatch(db.pool, 'w1', 10);
      if (b) await writeBatch(db.pool, 'w1', b);
      const r = await db.pool.query(`SELECT status FROM steadytext_pipeline_rows WHERE row_key = $1::jsonb`, [JSON.stringify([id])]);
      return r.rows[0]?.status === 'done';
    },
    ms,
    100,
  );
}

test('a change rolled back while the worker writes its batch: the row is retried (busy), not lost', async () => {
  const { db, batch, user } = await lockedDuringWrite(`UPDATE documents SET body = 'one, changed' WHERE id = 1`);
  try {
    const out = await writeBatch(db.pool, 'w1', batch);
    await user.query('ROLLBACK');
    const row = (await db.pool.query(`SELECT status, worker_id FROM steadytext_pipeline_rows WHERE row_key = '[1]'`)).rows[0];
    // what happens today: written 2, lost 1, and row [1] stays 'processing' under the live w1 for ever
    assert.deepEqual(
      { out, row },
      { out: { written: 2, stale: 0, busy: 1, failed: 0, lost: 0 }, row: { status: 'processing', worker_id: 'w1' } },
      'the contract: "busy (row locked by another session: retried later)"; the held row is recorded for the reclaim',
    );
    await db.pool.query(`SELECT _steadytext_pipeline_reclaim()`);
    const after = (await db.pool.query(`SELECT status, worker_id FROM steadytext_pipeline_rows WHERE row_key = '[1]'`)).rows[0];
    assert.deepEqual(after, { status: 'pending', worker_id: null }, 'the reclaim gives it back once the session let go');
    await eventuallyDone(db, 1, 5_000);
    const emb = (await db.pool.query(`SELECT emb FROM documents WHERE id = 1`)).rows[0].emb;
    assert.deepEqual(emb, [3, 322, 1], "row [1] holds its (unchanged) input's result");
  } finally {
    await user.end().catch(() => {});
    await db.drop();
  }
});

test('a delete rolled back while the worker writes its batch: the row is retried, not left processing', async () => {
  const { db, batch, user } = await lockedDuringWrite(`DELETE FROM documents WHERE id = 1`);
  try {
    await writeBatch(db.pool, 'w1', batch);
    await user.query('ROLLBACK');
    await eventuallyDone(db, 1, 5_000);
  } finally {
    await user.end().catch(() => {});
    await db.drop();
  }
});

test('a change rolled back while the worker gives its batch back (release): the row is not left processing', async () => {
  const { db, batch, user } = await lockedDuringWrite(`UPDATE documents SET body = 'one, changed' WHERE id = 1`);
  try {
    // the engine failed: the whole batch back to pending, as the worker does
    const n = await db.pool.query(`SELECT _steadytext_pipeline_release($1, 'w1', $2::jsonb[], $3::bigint[], NULL, 0) AS n`, [
      batch.pipelineId,
      batch.rows.map((x) => JSON.stringify(x.row_key)),
      batch.rows.map((x) => x.claim),
    ]);
    await user.query('ROLLBACK');
    assert.equal(Number(n.rows[0].n), 2, 'rows 2 and 3 released');
    await eventuallyDone(db, 1, 5_000);
  } finally {
    await user.end().catch(() => {});
    await db.drop();
  }
});

test(
  'a trigger of the destination that names a table without its schema runs in the write as it runs for the creator',
  async () => {
    const db = await createTestDatabase();
    try {
      await db.pool.query(`CREATE TABLE documents (id integer PRIMARY KEY, body text, emb real[])`);
      await db.pool.query(`CREATE TABLE audit (id integer, at timestamptz DEFAULT now())`);
      await db.pool.query(`CREATE FUNCTION audit_emb() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO audit (id) VALUES (NEW.id); RETURN NULL; END $$`);
      await db.pool.query(`CREATE TRIGGER audit_emb AFTER UPDATE OF emb ON documents FOR EACH ROW EXECUTE FUNCTION audit_emb()`);
      await db.pool.query(`INSERT INTO documents VALUES (1, 'one', NULL)`);
      // the creator's own write works
      await db.pool.query(`UPDATE documents SET emb = '{1}' WHERE id = 1`);
      assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM audit`)).rows[0].n, 1);
      await db.pool.query(`SELECT steadytext_pipeline_create('p', 'documents', 'body', 'emb')`);
      await db.pool.query(`INSERT INTO steadytext_workers (worker_id, host, pid) VALUES ('w1', 'test', 1)`);
      await publishModels(db.pool);
      const batch = (await claimBatch(db.pool, 'w1', 10))!;
      const out = await writeBatch(db.pool, 'w1', batch);
      const failures = (await db.pool.query(`SELECT error FROM steadytext_pipeline_failures('p')`)).rows.map((r) => r.error);
      assert.deepEqual({ out, failures }, { out: { written: 1, stale: 0, busy: 0, failed: 0, lost: 0 }, failures: [] });
    } finally {
      await db.drop();
    }
  },
);
