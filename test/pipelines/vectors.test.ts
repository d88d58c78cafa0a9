// Embeddings reach the destination as binary vectors (schema 1.6.0,
// docs/pipelines.md "Worker surface"): the claim says which pipelines take
// them, the worker's own write (writePipelineBatch) sends one binary real[] a
// batch, and every destination ends with the value the text form gives.
// Vectors that do not add up are refused and change nothing; a pipeline made
// by 1.5.0 gets its write function rewritten by its first claim after the
// upgrade.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { registerStandInWorker } from '../helpers/pipelines.ts';
import { claimPipelineBatch, type PipelineRow } from '../../src/db/pipelines/claimPipelineBatch.ts';
import { writePipelineBatch, type PipelineRowResult } from '../../src/db/pipelines/writePipelineBatch.ts';
import { currentVersion, migrate } from '../../src/db/schema/migrate.ts';
import { writeResult } from '../../src/jobTypes.ts';
import { assertSqlError } from '../sql/helpers.ts';

const MODELS = { embedding: 'default-embedding', generation: 'default-generation' };
const WORKER = 'vec-worker';

let db: TestDatabase;

before(async () => {
  db = await createTestDatabase();
  await registerStandInWorker(db.pool, WORKER);
});
after(async () => {
  await db?.drop();
});

/** A vector per input whose values are not float32 (rounding shows) and differ by row. */
const vectorOf = (input: string, dims = 5) => Array.from({ length: dims }, (_, i) => (input.length + i) / 7 + 1e-9);

/** A real[] as node-postgres reads it (each float4's shortest text, parsed as a double), back to float32 values. */
const f32 = (a: number[] | null) => a && a.map(Math.fround);

const claim = (on = db.pool) => claimPipelineBatch(on, WORKER, 100, MODELS, null);

/** The worker's write: vectors where the claim said so, else their text. */
function results(rows: PipelineRow[], dims = 5): PipelineRowResult[] {
  return rows.map((r) => {
    const ref = { row_key: r.row_key, claim: r.claim, input_hash: r.input_hash };
    if (r.input === null) return { ...ref, result: null };
    const v = vectorOf(r.input, dims);
    return r.vectors ? { ...ref, vector: v } : { ...ref, result: writeResult('embed', v) };
  });
}

test('the claim says which pipelines take vectors: embed into real[]; not double precision[], jsonb, text, a cached pipeline or generate', async () => {
  await db.pool.query(`CREATE TABLE kinds (id int PRIMARY KEY, body text, r real[], d double precision[], j jsonb, t text, c real[], g text)`);
  await db.pool.query(`INSERT INTO kinds (id, body) VALUES (1, 'one')`);
  const made: [string, string, string, boolean][] = [
    ['k_real', 'r', 'embed', false], ['k_double', 'd', 'embed', false], ['k_jsonb', 'j', 'embed', false],
    ['k_text', 't', 'embed', false], ['k_cached', 'c', 'embed', true], ['k_gen', 'g', 'generate', false],
  ];
  for (const [name, column, fn, cache] of made) {
    await db.pool.query(`SELECT steadytext_pipeline_create($1, 'kinds', 'body', $2, $3, '{}', 0, $4)`, [name, column, fn, cache]);
  }
  const seen: Record<string, boolean> = {};
  for (;;) {
    const rows = await claim();
    if (rows.length === 0) break;
    seen[rows[0].name] = rows[0].vectors;
    const counts = await writePipelineBatch(db.pool, rows[0].pipeline_id, WORKER, rows[0].model_id,
      rows[0].function_name === 'embed' ? results(rows) : rows.map((r) => ({ row_key: r.row_key, claim: r.claim, input_hash: r.input_hash, result: 'words' })));
    assert.deepEqual(counts, { written: 1, stale: 0, busy: 0, failed: 0, lost: 0 }, rows[0].name);
  }
  assert.deepEqual(seen, { k_real: true, k_double: false, k_jsonb: false, k_text: false, k_cached: false, k_gen: false });
  const v = vectorOf('one');
  const row = (await db.pool.query(`SELECT r, d, j, t, c FROM kinds`)).rows[0];
  // real[]: each value as float32, as its text form gives; double precision[]: every digit of the text
  assert.deepEqual(f32(row.r), v.map(Math.fround));
  assert.deepEqual(row.d, v);
  assert.deepEqual(f32(row.c), v.map(Math.fround), 'the cached pipeline wrote its text');
  assert.deepEqual(row.j, v);
  assert.equal(row.t, writeResult('embed', v));
  for (const [name] of made) await db.pool.query(`SELECT steadytext_pipeline_drop($1)`, [name]);
});

test('a batch of vectors with NULL inputs among them: each row gets its own vector, the NULL rows NULL', async () => {
  await db.pool.query(`CREATE TABLE mixed (id int PRIMARY KEY, body text, emb real[])`);
  await db.pool.query(`INSERT INTO mixed SELECT g, CASE WHEN g % 3 = 0 THEN NULL ELSE repeat('x', g) END FROM generate_series(1, 40) g`);
  await db.pool.query(`SELECT steadytext_pipeline_create('mixed', 'mixed', 'body', 'emb')`);
  const rows = await claim();
  assert.equal(rows.length, 40);
  assert.ok(rows.every((r) => r.vectors));
  const counts = await writePipelineBatch(db.pool, rows[0].pipeline_id, WORKER, rows[0].model_id, results(rows, 1024));
  assert.equal(counts.written, 40);
  const got = (await db.pool.query<{ id: number; body: string | null; emb: number[] | null }>(`SELECT id, body, emb FROM mixed ORDER BY id`)).rows;
  for (const r of got) assert.deepEqual(f32(r.emb), r.body === null ? null : vectorOf(r.body, 1024).map(Math.fround), `row ${r.id}`);
  assert.equal(Number((await db.pool.query(`SELECT dimensions FROM steadytext_pipelines WHERE name = 'mixed'`)).rows[0].dimensions), 1024,
    'the size learnt from the vectors');
  await db.pool.query(`SELECT steadytext_pipeline_drop('mixed')`);
});

test('vectors that do not add up are refused with 22023 and change nothing; the same claim then writes', async () => {
  await db.pool.query(`CREATE TABLE refused (id int PRIMARY KEY, body text, emb real[])`);
  await db.pool.query(`INSERT INTO refused VALUES (1, 'a'), (2, 'bb')`);
  await db.pool.query(`SELECT steadytext_pipeline_create('refused', 'refused', 'body', 'emb')`);
  const rows = await claim();
  const call = `SELECT * FROM _steadytext_pipeline_write($1, $2, 'default-embedding', $3::jsonb[], $4::bigint[], $5::text[],
                  ARRAY[NULL, NULL]::text[], ARRAY[NULL, NULL]::text[], $6::real[], $7::integer[])`;
  const base = [rows[0].pipeline_id, WORKER, rows.map((r) => JSON.stringify(r.row_key)), rows.map((r) => r.claim), rows.map((r) => r.input_hash)];
  for (const [vectors, starts] of [
    ['{1,2,3}', '{1,3}'],        // 3 values for two rows
    ['{1,2,3,4}', '{1,1}'],      // both rows the same vector
    ['{1,2,3,4}', '{1,4}'],      // a start inside a vector
    ['{1,2,3,4}', '{1,5}'],      // past the end
    ['{1,2,3,4}', '{1}'],        // a start missing
    ['[0:3]={1,2,3,4}', '{1,3}'], // another lower bound
    ['{{1,2},{3,4}}', '{1,3}'],  // two dimensions
  ]) {
    await assertSqlError(db.pool, call, [...base, vectors, starts], '22023', 'vectors').catch((e) => assert.fail(`${vectors} ${starts}: ${e.message}`));
  }
  assert.deepEqual((await db.pool.query(`SELECT emb FROM refused ORDER BY id`)).rows, [{ emb: null }, { emb: null }]);
  assert.deepEqual((await db.pool.query(`SELECT status FROM steadytext_pipeline_rows r JOIN steadytext_pipelines p USING (pipeline_id)
                                          WHERE p.name = 'refused'`)).rows.map((r) => r.status), ['processing', 'processing']);
  const ok = await db.pool.query(call.replace('*', 'outcome, "rows"::int AS n'), [...base, '{1,2,3,4}', '{3,1}']);
  assert.equal(ok.rows.find((r) => r.outcome === 'written').n, 2);
  assert.deepEqual((await db.pool.query(`SELECT emb FROM refused ORDER BY id`)).rows.map((r) => r.emb), [[3, 4], [1, 2]]);
  await db.pool.query(`SELECT steadytext_pipeline_drop('refused')`);
});

test('a pipeline made by schema 1.5.0 writes vectors after the upgrade: its first claim rewrites its write function', async () => {
  const old = await createTestDatabase({ empty: true });
  try {
    const c = await old.connect();
    await migrate(c, { target: '1.5.0' });
    await registerStandInWorker(c, WORKER);
    await c.query(`CREATE TABLE docs (id int PRIMARY KEY, body text, emb real[])`);
    await c.query(`INSERT INTO docs VALUES (1, 'a'), (2, 'bb')`);
    await c.query(`SELECT steadytext_pipeline_create('docs_emb', 'docs', 'body', 'emb')`);
    const signature = async () =>
      (await c.query<{ s: string }>(`SELECT array_agg(oid::regprocedure::text ORDER BY oid) AS s FROM pg_proc WHERE proname = '_stxp_1_write'`)).rows[0].s;
    assert.deepEqual(await signature(), ['_stxp_1_write(jsonb[],text[],text[])']);
    const up = await migrate(c);
    assert.deepEqual([up.from, up.to], ['1.5.0', currentVersion()]);
    const rows = await claimPipelineBatch(c, WORKER, 100, MODELS, null);
    assert.deepEqual(await signature(), ['_stxp_1_write(jsonb[],text[],text[],real[],integer[],integer)']);
    assert.ok(rows.length === 2 && rows.every((r) => r.vectors));
    assert.equal((await writePipelineBatch(c, rows[0].pipeline_id, WORKER, rows[0].model_id, results(rows))).written, 2);
    assert.deepEqual((await c.query(`SELECT emb FROM docs ORDER BY id`)).rows.map((r) => f32(r.emb)),
      [vectorOf('a').map(Math.fround), vectorOf('bb').map(Math.fround)]);
    // still the creator's: the worker role gains nothing
    assert.equal((await c.query(`SELECT prosecdef AND proowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS ok
                                 FROM pg_proc WHERE proname = '_stxp_1_write'`)).rows[0].ok, true);
    await c.end();
  } finally {
    await old.drop();
  }
});
