// The scan over a pipeline's source claims the rows it finds (1.8.0,
// _steadytext_pipeline_scan_claim): a backfilled row's bookkeeping is
// written twice, inserted as claimed and written as done, where 1.7.0 wrote
// it three times (inserted pending by the scan, claimed, written). Driven
// with the worker's own calls; the writes are counted the way PostgreSQL
// counts them (pg_stat_xact_user_tables: rows inserted and updated).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { createTestDatabase } from '../helpers/db.ts';
import { claimBatch, publishModels, simVector, writeBatch, type ClaimedBatch } from './simulatedWorker.ts';

const ROWS = 1_000;
const BATCH = 100;

async function setup(rows = ROWS) {
  const db = await createTestDatabase();
  await db.pool.query(`CREATE TABLE documents (id integer PRIMARY KEY, body text NOT NULL, emb real[])`);
  await db.pool.query(`INSERT INTO documents SELECT g, 'document ' || g FROM generate_series(1, ${rows}) AS g`);
  await db.pool.query(`SELECT steadytext_pipeline_create('p', 'documents', 'body', 'emb', batch_size => ${BATCH})`);
  await db.pool.query(`INSERT INTO steadytext_workers (worker_id, host, pid) VALUES ('w1', 'test', 1), ('w2', 'test', 2)`);
  await publishModels(db.pool);
  return db;
}

/** Rows of steadytext_pipeline_rows this session's transaction inserted and updated so far. */
async function bookkeepingWrites(c: pg.ClientBase): Promise<number> {
  const r = await c.query<{ n: string }>(
    `SELECT coalesce(n_tup_ins, 0) + coalesce(n_tup_upd, 0) AS n FROM pg_stat_xact_user_tables
     WHERE relid = 'steadytext_pipeline_rows'::regclass`,
  );
  return Number(r.rows[0]?.n ?? 0);
}

/** Claims and writes every batch as one worker, each call in its own transaction; the bookkeeping rows written. */
async function fill(c: pg.ClientBase, worker: string): Promise<{ written: number; writes: number }> {
  let written = 0;
  let writes = 0;
  for (;;) {
    await c.query('BEGIN');
    let before = await bookkeepingWrites(c);
    const b = await claimBatch(c, worker, BATCH);
    writes += (await bookkeepingWrites(c)) - before;
    await c.query('COMMIT');
    if (!b) return { written, writes };
    await c.query('BEGIN');
    before = await bookkeepingWrites(c);
    const out = await writeBatch(c, worker, b);
    writes += (await bookkeepingWrites(c)) - before;
    await c.query('COMMIT');
    written += out.written;
  }
}

async function allDone(db: Awaited<ReturnType<typeof setup>>, rows = ROWS): Promise<void> {
  const r = await db.pool.query(
    `SELECT count(*) FILTER (WHERE emb = $1::real[]) AS right, count(*) AS n FROM documents WHERE id = 1
     UNION ALL SELECT count(*) FILTER (WHERE status = 'done'), count(*) FROM steadytext_pipeline_rows`,
    [simVector('document 1')],
  );
  assert.deepEqual(r.rows.map((x) => [Number(x.right), Number(x.n)]), [[1, 1], [rows, rows]], 'every row done, with its value');
  const s = await db.pool.query(`SELECT backfilling, pending, processing, coverage FROM steadytext_pipeline_status('p')`);
  assert.deepEqual(s.rows[0], { backfilling: false, pending: '0', processing: '0', coverage: 100 });
}

test('a backfill writes each row of bookkeeping twice (claimed by the scan, written as done), a rerun likewise', async () => {
  const db = await setup();
  const c = await db.connect();
  try {
    const first = await fill(c, 'w1');
    assert.equal(first.written, ROWS);
    assert.equal(first.writes, 2 * ROWS, 'inserted as claimed, then updated as done: nothing else');
    await allDone(db);

    // a rerun: every row's value is recomputed from its done row, which goes
    // straight to claimed (not pending first), then done
    await db.pool.query(`SELECT steadytext_pipeline_rerun('p')`);
    const rerun = await fill(c, 'w1');
    assert.equal(rerun.written, ROWS);
    assert.equal(rerun.writes, 2 * ROWS);
    await allDone(db);
  } finally {
    await db.drop();
  }
});

test("two workers' claims during a backfill take disjoint rows that cover the table once, each in key order", async () => {
  const db = await setup();
  const a = await db.connect();
  const b = await db.connect();
  try {
    const seen = new Map<number, string>();
    for (;;) {
      // both at once: one waits for the other's step (the scan's position) and goes on after it
      const [x, y] = await Promise.all([claimBatch(a, 'w1', BATCH), claimBatch(b, 'w2', BATCH)]);
      if (!x && !y) break;
      for (const [worker, batch, conn] of [['w1', x, a], ['w2', y, b]] as [string, ClaimedBatch | undefined, pg.ClientBase][]) {
        if (!batch) continue;
        const ids = batch.rows.map((r) => r.row_key[0] as number);
        assert.deepEqual(ids, [...ids].sort((p, q) => p - q), 'a batch from the scan is in key order');
        for (const id of ids) {
          assert.ok(!seen.has(id), `row ${id} claimed by ${seen.get(id)} and ${worker}`);
          seen.set(id, worker);
        }
        const out = await writeBatch(conn, worker, batch);
        assert.equal(out.written, batch.rows.length);
      }
    }
    assert.equal(seen.size, ROWS);
    assert.ok(new Set(seen.values()).size === 2, 'both workers got rows');
    await allDone(db);
  } finally {
    await db.drop();
  }
});

test('changes first: rows a session changed during a backfill are claimed before the scan goes on, and the batch is filled from the scan', async () => {
  const db = await setup();
  const c = await db.connect();
  try {
    let b = (await claimBatch(c, 'w1', BATCH))!;
    assert.deepEqual(b.rows.map((r) => r.row_key[0]), Array.from({ length: BATCH }, (_, i) => i + 1));
    await writeBatch(c, 'w1', b);
    // a change to a row written already, and one to a row the scan has not reached
    await db.pool.query(`UPDATE documents SET body = 'changed ' || id WHERE id IN (7, 900)`);
    b = (await claimBatch(c, 'w1', BATCH))!;
    const ids = b.rows.map((r) => r.row_key[0] as number);
    assert.deepEqual(ids.slice(0, 2).sort((p, q) => p - q), [7, 900], 'the changed rows first');
    assert.deepEqual(ids.slice(2), Array.from({ length: BATCH - 2 }, (_, i) => i + 101), 'the rest of the batch from the scan, in key order');
    assert.equal(b.rows[0].input?.startsWith('changed'), true);
    await writeBatch(c, 'w1', b);
    // the scan passes row 900 by: its value is current
    for (let next = await claimBatch(c, 'w1', BATCH); next; next = await claimBatch(c, 'w1', BATCH)) {
      assert.ok(!next.rows.some((r) => r.row_key[0] === 900), 'row 900 is not computed twice for one change');
      await writeBatch(c, 'w1', next);
    }
    await allDone(db);
    const r = await db.pool.query(`SELECT emb FROM documents WHERE id = 900`);
    assert.deepEqual(r.rows[0].emb.map(Math.fround), simVector('changed 900'));
  } finally {
    await db.drop();
  }
});

test("a session holding the pipeline's row does not stall the claim: changes are still claimed, the scan waits for it", async () => {
  const db = await setup();
  const c = await db.connect();
  const admin = await db.connect();
  try {
    await writeBatch(c, 'w1', (await claimBatch(c, 'w1', BATCH))!);
    await db.pool.query(`UPDATE documents SET body = 'changed 3' WHERE id = 3`);
    // an open transaction holding the pipeline's row (as steadytext_pipeline_alter does until it commits)
    await admin.query('BEGIN');
    await admin.query(`SELECT 1 FROM steadytext_pipelines WHERE name = 'p' FOR NO KEY UPDATE`);
    const b = (await claimBatch(c, 'w1', BATCH))!;
    assert.deepEqual(b.rows.map((r) => r.row_key[0]), [3], 'the change claimed; the scan left for later');
    await writeBatch(c, 'w1', b);
    assert.equal(await claimBatch(c, 'w1', BATCH), undefined, 'nothing else while the session holds the pipeline');
    await admin.query('COMMIT');
    const next = (await claimBatch(c, 'w1', BATCH))!;
    assert.equal(next.rows[0].row_key[0], BATCH + 1, 'the scan goes on where it stood');
    await writeBatch(c, 'w1', next);
    for (let more = await claimBatch(c, 'w1', BATCH); more; more = await claimBatch(c, 'w1', BATCH)) await writeBatch(c, 'w1', more);
    await allDone(db);
  } finally {
    await admin.query('ROLLBACK').catch(() => {});
    await db.drop();
  }
});

test('the backfill ends with the claim of its last rows, also when they fill the batch exactly', async () => {
  for (const rows of [250, 2 * BATCH]) {
    const db = await setup(rows);
    const c = await db.connect();
    try {
      const backfilling = async () => (await db.pool.query(`SELECT backfilling FROM steadytext_pipeline_status('p')`)).rows[0].backfilling;
      const sizes: number[] = [];
      for (let left = rows; left > 0; left -= BATCH) {
        assert.equal(await backfilling(), true, `${rows} rows: backfilling before the claim of row ${rows - left + 1}`);
        const b = (await claimBatch(c, 'w1', BATCH))!;
        sizes.push(b.rows.length);
        await writeBatch(c, 'w1', b);
      }
      assert.deepEqual(sizes, rows === 250 ? [100, 100, 50] : [100, 100]);
      assert.equal(await backfilling(), false, `${rows} rows: over once the last rows are claimed`);
      await allDone(db, rows);
    } finally {
      await db.drop();
    }
  }
});
