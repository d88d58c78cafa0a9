// A batch costs the bookkeeping in proportion to the batch, not to the
// pipeline, whatever PostgreSQL's statistics say. A new pipeline is the
// usual case: its rows arrive faster than autovacuum analyzes them, and the
// planner, told steadytext_pipeline_rows is empty, once hashed every row of
// the pipeline for each scan chunk and walked them once per claimed row.
// Measured the way PostgreSQL counts it: the rows of steadytext_pipeline_rows
// a claim's or a write's scans fetched (pg_stat_xact_user_tables). 1.6.0's
// write fetched every row the pipeline held (11,100 here), 1.7.0's its 100.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { createTestDatabase } from '../helpers/db.ts';
import { claimBatch, publishModels, writeBatch } from './simulatedWorker.ts';

const ROWS = 30_000;
const BATCH = 100;

/** Rows of steadytext_pipeline_rows fetched by this session's scans, as counted so far (pg_stat_xact_user_tables). */
async function fetched(c: pg.Client): Promise<number> {
  const r = await c.query<{ n: string }>(
    `SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) AS n
     FROM pg_stat_xact_user_tables WHERE relid = 'steadytext_pipeline_rows'::regclass`,
  );
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * Claims and writes of a pipeline over ROWS documents, a third of them done,
 * with the statistics of steadytext_pipeline_rows taken when the pipeline
 * held `analyzedAt` rows (autovacuum off): the most bookkeeping rows one
 * claim and one write fetched.
 */
async function reads(analyzedAt: number): Promise<{ claim: number; write: number; known: number }> {
  const db = await createTestDatabase();
  const c = await db.connect();
  try {
    await db.pool.query(`CREATE TABLE documents (id integer PRIMARY KEY, body text NOT NULL, emb real[])`);
    await db.pool.query(`INSERT INTO documents SELECT g, 'document ' || g FROM generate_series(1, ${ROWS}) AS g`);
    await db.pool.query(`ALTER TABLE steadytext_pipeline_rows SET (autovacuum_enabled = false)`);
    if (analyzedAt === 0) await db.pool.query(`ANALYZE steadytext_pipeline_rows`);
    await db.pool.query(`SELECT steadytext_pipeline_create('p', 'documents', 'body', 'emb', batch_size => ${BATCH})`);
    await db.pool.query(`INSERT INTO steadytext_workers (worker_id, host, pid) VALUES ('w1', 'test', 1)`);
    await publishModels(db.pool);

    // fill until the pipeline knows most of its rows and a third are done
    let done = 0;
    while (done < ROWS / 3) {
      const b = await claimBatch(db.pool, 'w1', BATCH);
      assert.ok(b, 'a claim while rows are left');
      const out = await writeBatch(db.pool, 'w1', b);
      assert.equal(out.written, b.rows.length);
      done += out.written;
      if (analyzedAt > 0 && done === analyzedAt) await db.pool.query(`ANALYZE steadytext_pipeline_rows`);
    }
    const known = Number((await db.pool.query(`SELECT count(*) AS n FROM steadytext_pipeline_rows`)).rows[0].n);
    assert.ok(known >= ROWS / 3, `the pipeline holds a third of the table's rows (${known} known)`);

    // claims (with their scan steps) and writes, each in its own transaction
    // (the counts of a session not flushed yet add up: before and after)
    const most = { claim: 0, write: 0 };
    for (let i = 0; i < 5; i++) {
      await c.query('BEGIN');
      let before = await fetched(c);
      const b = await claimBatch(c, 'w1', BATCH);
      most.claim = Math.max(most.claim, (await fetched(c)) - before);
      await c.query('COMMIT');
      assert.ok(b && b.rows.length === BATCH, 'a full batch claimed');
      await c.query('BEGIN');
      before = await fetched(c);
      const out = await writeBatch(c, 'w1', b);
      most.write = Math.max(most.write, (await fetched(c)) - before);
      await c.query('COMMIT');
      assert.equal(out.written, BATCH);
    }
    return { ...most, known };
  } finally {
    await db.drop();
  }
}

// a claim reads its batch, and the keys its scan step checks against what
// the pipeline holds (at most max(4 x batch, 1,000)); a write reads its batch
for (const [analyzedAt, when] of [
  [0, 'statistics that say the bookkeeping is empty, as before a pipeline\'s first analyze'],
  [500, 'statistics taken when it held 500 rows (autovacuum analyzes a new pipeline early, then not for a while)'],
] as const) {
  test(`claims and writes of a new pipeline touch about a batch of bookkeeping rows, not the whole pipeline: ${when}`, async () => {
    const r = await reads(analyzedAt);
    assert.ok(r.claim <= 3 * 1_000, `a claim fetched ${r.claim} bookkeeping rows of the ${r.known} the pipeline holds`);
    assert.ok(r.write <= 3 * BATCH, `a write fetched ${r.write} bookkeeping rows of the ${r.known} the pipeline holds`);
  });
}

test('a pipeline write commits without waiting for the disk, in its own transaction only', async () => {
  const db = await createTestDatabase();
  const c = await db.connect();
  try {
    await db.pool.query(`CREATE TABLE documents (id integer PRIMARY KEY, body text NOT NULL, emb real[])`);
    await db.pool.query(`INSERT INTO documents VALUES (1, 'one'), (2, 'two')`);
    await db.pool.query(`SELECT steadytext_pipeline_create('p', 'documents', 'body', 'emb')`);
    await db.pool.query(`INSERT INTO steadytext_workers (worker_id, host, pid) VALUES ('w1', 'test', 1)`);
    await publishModels(db.pool);
    const setting = async () => (await c.query<{ s: string }>(`SELECT current_setting('synchronous_commit') AS s`)).rows[0].s;
    await c.query(`SET synchronous_commit = on`); // the test server runs with it off
    assert.equal(await setting(), 'on');
    await c.query('BEGIN');
    const b = await claimBatch(c, 'w1', 10);
    assert.equal(await setting(), 'off', 'the claim commits asynchronously');
    await c.query('COMMIT');
    assert.equal(await setting(), 'on', "the session's own setting is back after the claim's transaction");
    await c.query('BEGIN');
    assert.deepEqual(await writeBatch(c, 'w1', b!), { written: 2, stale: 0, busy: 0, failed: 0, lost: 0 });
    assert.equal(await setting(), 'off', 'the write commits asynchronously');
    await c.query('COMMIT');
    assert.equal(await setting(), 'on', "the session's own setting is back after the write's transaction");
    const r = await db.pool.query(`SELECT count(*)::int AS n FROM documents WHERE emb IS NOT NULL`);
    assert.equal(r.rows[0].n, 2, 'both values written and committed');
  } finally {
    await db.drop();
  }
});
