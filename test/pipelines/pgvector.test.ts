// pgvector (docs/pipelines.md, "pgvector"): pgvector is not installed on the
// machines that run the suite, so this runs against pgvector compiled to
// WebAssembly inside PGlite (@electric-sql/pglite, a devDependency: PostgreSQL
// 17 with `CREATE EXTENSION vector`, pgvector 0.8, in this process). The whole
// pg_steadytext schema is installed there as `steadytext migrate` installs it,
// so the embeddings a worker writes go through the pipeline's own generated
// write function (CAST(v AS vector(n)) / halfvec(n), v the row's slice of the
// batch's real[]; the text form where the claim says no vectors) into real
// pgvector columns:
//   * the worker's result text (RESULT_FORMATS.vector: `[0.1,0.2,...]`, every
//     number as JavaScript prints it, exponents included) is accepted by
//     pgvector's input functions, and holds the engine's floats exactly
//     (vector: float4; halfvec: float16, rounded through float4);
//   * `<=>` over the written values gives the cosine distance of the engine's
//     vectors;
//   * a result of the wrong size is refused by pgvector with its own error,
//     which the write records on that row alone; a NaN too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite/vector';
import { currentVersion, scriptText } from '../../src/db/schema/migrate.ts';
import { writeResult } from '../../src/jobTypes.ts';
import { l2Normalise } from '../../src/engine/outputChecks.ts';
import { SIM_MODELS } from './simulatedWorker.ts';

/** A deterministic pseudo-random unit vector of `n` dimensions (as an engine gives: L2-normalised doubles). */
function unitVector(seed: number, n: number): number[] {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32 - 0.5;
  };
  return l2Normalise(Array.from({ length: n }, next), `vector ${seed}`);
}

/** Cosine distance in double precision over the values as the column holds them. */
function cosineDistance(a: number[], b: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return 1 - dot / Math.sqrt(na * nb);
}

// (+ 0: the text form prints -0 as 0)
const f32 = (v: number[]) => v.map((x) => Math.fround(x) + 0);
/** `x` rounded to the nearest IEEE half (ties to even), as Math.f16round (Node 24, not 22) does; finite, in range. */
function halfRound(x: number): number {
  const a = Math.abs(x);
  if (a === 0) return 0;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const quantum = 2 ** (Math.max(e, -14) - 10); // 10 fraction bits; below 2^-14 the subnormals' fixed step
  const n = a / quantum;
  let r = Math.round(n);
  if (n - Math.floor(n) === 0.5) r = Math.floor(n) % 2 === 0 ? Math.floor(n) : Math.ceil(n);
  return Math.sign(x) * r * quantum;
}
// halfvec's input reads a float4 (strtof) and rounds that to a half: two roundings
const f16 = (v: number[]) => v.map((x) => halfRound(Math.fround(x)) + 0);

/** The vectors the checks write: unit vectors, and the numbers JavaScript prints oddly. */
const SAMPLES: Array<[string, number[]]> = [
  ['a unit 3-vector', unitVector(1, 3)],
  ['an axis', [1, 0, 0]],
  ['numbers JavaScript prints with exponents (1e-7, -2.5e-12)', [1e-7, -2.5e-12, 0.9999999999999999]],
  ['a negative zero and an integer', [-0, 3, -1]],
  ['a denormal double (0 as a float)', [5e-324, 0.5, -0.5]],
  ['17 significant digits', [0.12345678901234568, -0.9876543210987654, 0.1]],
];

let db: PGlite;
let dbReady: Promise<PGlite> | undefined;

/** One PGlite for the file: pgvector loaded, pg_steadytext installed (public schema), as `migrate` does. */
function pglite(): Promise<PGlite> {
  dbReady ??= (async () => {
    const p = await PGlite.create({ extensions: { vector } });
    await p.exec('CREATE EXTENSION vector');
    await p.exec(`BEGIN; SET LOCAL search_path = public, pg_catalog;
      ${scriptText(`pg_steadytext--${currentVersion()}.sql`, 'public')};
      COMMIT;`);
    await p.exec(`CREATE ROLE vec_alice IN ROLE steadytext_user; CREATE ROLE vec_worker IN ROLE steadytext_worker;
                  GRANT CREATE ON SCHEMA public TO vec_alice`);
    db = p;
    return p;
  })();
  return dbReady;
}

/** The error a statement raises (SQLSTATE and message), or undefined. */
async function errorOf(sql: string, params: unknown[] = []): Promise<{ code: string; message: string } | undefined> {
  try {
    await db.query(sql, params);
    return undefined;
  } catch (e) {
    const err = e as { code?: string; message: string };
    return { code: err.code ?? '', message: err.message };
  }
}

/** Runs `f` as `role` (SET ROLE, reset after). */
async function as<T>(role: string, f: () => Promise<T>): Promise<T> {
  await db.exec(`SET ROLE ${role}`);
  try {
    return await f();
  } finally {
    await db.exec('RESET ROLE');
  }
}

interface Claimed {
  pipeline_id: number;
  name: string;
  model_id: string;
  dimensions: number | null;
  row_key: unknown;
  claim: string;
  input: string | null;
  input_hash: string | null;
  vectors: boolean;
}

async function claim(maxRows = 100): Promise<Claimed[]> {
  const r = await db.query<Claimed>(
    `SELECT pipeline_id, name, model_id, dimensions, row_key, claim::text AS claim, input, input_hash, vectors
     FROM _steadytext_pipeline_claim('vec-worker', $1, $2::jsonb)`,
    [maxRows, JSON.stringify(SIM_MODELS)],
  );
  return r.rows;
}

/**
 * _steadytext_pipeline_write for claimed rows with the given embeddings, as
 * the worker sends them: one real[] of every vector where the claim says
 * `vectors` (and they are of one size), else their texts; outcome → rows.
 */
async function write(rows: Claimed[], vectors: number[][]): Promise<Record<string, number>> {
  const binary = rows[0].vectors && new Set(vectors.map((v) => v.length)).size === 1;
  const batch = rows.map((x, i) => ({
    row_key: x.row_key,
    claim: x.claim,
    input_hash: x.input_hash,
    result: binary ? null : writeResult('embed', vectors[i]),
    start: binary ? i * vectors[0].length + 1 : null,
  }));
  const r = await db.query<{ outcome: string; rows: number }>(
    `WITH b AS (SELECT x, n FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS t(x, n))
     SELECT w.outcome, w."rows"::int AS "rows" FROM _steadytext_pipeline_write($1, 'vec-worker', $2,
         ARRAY(SELECT x->'row_key' FROM b ORDER BY n),
         ARRAY(SELECT (x->>'claim')::bigint FROM b ORDER BY n),
         ARRAY(SELECT x->>'input_hash' FROM b ORDER BY n),
         ARRAY(SELECT x->>'result' FROM b ORDER BY n),
         ARRAY(SELECT NULL::text FROM b ORDER BY n),
         $4::real[],
         CASE WHEN $4 IS NOT NULL THEN ARRAY(SELECT (x->>'start')::int FROM b ORDER BY n) END) AS w`,
    [rows[0].pipeline_id, rows[0].model_id, JSON.stringify(batch), binary ? `{${vectors.flat().join(',')}}` : null],
  );
  return Object.fromEntries(r.rows.filter((x) => x.rows > 0).map((x) => [x.outcome, x.rows]));
}

// No close(): PGlite 0.3.16's close() crashed here ("memory access out of
// bounds" in its WebAssembly fflush at shutdown) once a worker role had
// written through a pipeline owned by another role, every assertion having
// passed. The instance lives in this process's memory and ends with it.

test('pgvector reads the worker\'s text of an embedding: every float exactly, in vector(n) and halfvec(n)', { timeout: 300_000 }, async () => {
  await pglite();
  const version = (await db.query<{ v: string }>(`SELECT extversion AS v FROM pg_extension WHERE extname = 'vector'`)).rows[0].v;
  assert.match(version, /^0\.\d+\.\d+$/);
  const all: Array<[string, number[]]> = [...SAMPLES, ['a 1024-dimension unit vector', unitVector(7, 1024)]];
  for (const [what, v] of all) {
    const text = writeResult('embed', v);
    const n = v.length;
    // the cast the generated write function makes: CAST(<result text> AS vector(n))
    const r = await db.query<{ vec: number[]; half: number[]; dims: number; hdims: number }>(
      `SELECT CAST($1::text AS vector(${n}))::real[] AS vec, CAST($1::text AS halfvec(${n}))::real[] AS half,
              vector_dims(CAST($1::text AS vector(${n}))) AS dims, vector_dims(CAST($1::text AS halfvec(${n}))) AS hdims`,
      [text],
    );
    const got = r.rows[0];
    assert.equal(got.dims, n, what);
    assert.equal(got.hdims, n, what);
    assert.deepEqual(f32(got.vec), f32(v), `${what}: vector holds each float4 of the engine's doubles`);
    assert.deepEqual(f32(got.half), f16(v), `${what}: halfvec holds each float16 of the engine's doubles`);
  }
});

test('<=> over the written values is the cosine distance of the engine\'s vectors (vector and halfvec), and orders neighbours right', { timeout: 300_000 }, async () => {
  await pglite();
  for (const n of [3, 1024]) {
    const vs = Array.from({ length: 20 }, (_, i) => unitVector(100 + i, n));
    const q = unitVector(999, n);
    const r = await db.query<{ i: number; d: number; h: number }>(
      `SELECT t.i::int AS i, CAST(t.v AS vector(${n})) <=> CAST($2::text AS vector(${n})) AS d,
              CAST(t.v AS halfvec(${n})) <=> CAST($2::text AS halfvec(${n})) AS h
       FROM unnest($1::text[]) WITH ORDINALITY AS t(v, i) ORDER BY i`,
      [vs.map((v) => writeResult('embed', v)), writeResult('embed', q)],
    );
    for (const row of r.rows) {
      const v = vs[row.i - 1];
      // pgvector sums in single precision: agreement to 1e-5 over 1024 dimensions
      assert.ok(Math.abs(row.d - cosineDistance(f32(v), f32(q))) < 1e-5, `vector(${n}) #${row.i}: ${row.d} vs ${cosineDistance(f32(v), f32(q))}`);
      assert.ok(Math.abs(row.h - cosineDistance(f16(v), f16(q))) < 1e-4, `halfvec(${n}) #${row.i}: ${row.h} vs ${cosineDistance(f16(v), f16(q))}`);
    }
    // nearest first, as a query ordering by <=> ranks them
    const ranked = await db.query<{ i: number }>(
      `SELECT t.i::int AS i FROM unnest($1::text[]) WITH ORDINALITY AS t(v, i)
       ORDER BY CAST(t.v AS vector(${n})) <=> CAST($2::text AS vector(${n})), t.i LIMIT 5`,
      [vs.map((v) => writeResult('embed', v)), writeResult('embed', q)],
    );
    const expected = vs.map((v, i) => ({ i: i + 1, d: cosineDistance(f32(v), f32(q)) })).sort((a, b) => a.d - b.d || a.i - b.i).slice(0, 5);
    assert.deepEqual(ranked.rows.map((x) => x.i), expected.map((x) => x.i), `vector(${n}): the 5 nearest`);
  }
});

test('pgvector refuses a result of the wrong size (and a NaN) with its own error', { timeout: 300_000 }, async () => {
  await pglite();
  const four = writeResult('embed', unitVector(3, 4));
  for (const type of ['vector', 'halfvec']) {
    assert.deepEqual(await errorOf(`SELECT CAST($1::text AS ${type}(3))`, [four]), { code: '22000', message: 'expected 3 dimensions, not 4' });
    assert.deepEqual(await errorOf(`SELECT CAST($1::text AS ${type}(3))`, [writeResult('embed', [0.5, Number.NaN, 0.5])]), {
      code: '22000',
      message: `NaN not allowed in ${type}`,
    });
  }
  assert.deepEqual(await errorOf(`SELECT CAST('[1,0,0]' AS vector(3)) <=> CAST('[1,0,0,0]' AS vector(4))`), {
    code: '22000',
    message: 'different vector dimensions 3 and 4',
  });
});

test('a pipeline into vector(3) and halfvec(3): the generated write function casts the worker\'s vectors (real[]) into real pgvector columns; a wrong size fails that row with pgvector\'s error', { timeout: 300_000 }, async () => {
  await pglite();
  const texts = ['first document', 'second document', 'third', 'a fourth one'];
  const vecs = texts.map((_, i) => unitVector(50 + i, 3));
  await as('vec_alice', async () => {
    await db.exec(`CREATE TABLE vdocs (id integer PRIMARY KEY, body text, embedding vector(3), half halfvec(3))`);
    await db.query(`INSERT INTO vdocs (id, body) SELECT i::int, b FROM unnest($1::text[]) WITH ORDINALITY AS t(b, i)`, [texts]);
    await db.query(`SELECT steadytext_pipeline_create('vec_embed', 'vdocs', 'body', 'embedding')`);
    await db.query(`SELECT steadytext_pipeline_create('half_embed', 'vdocs', 'body', 'half')`);
    const p = await db.query<{ name: string; dest_type: string; dimensions: number }>(
      `SELECT name, dest_type, dimensions FROM steadytext_pipelines ORDER BY pipeline_id`,
    );
    assert.deepEqual(p.rows, [
      { name: 'vec_embed', dest_type: 'public.vector(3)', dimensions: 3 },
      { name: 'half_embed', dest_type: 'public.halfvec(3)', dimensions: 3 },
    ]);
  });
  const written = new Map<string, number>();
  await as('vec_worker', async () => {
    await db.query(`SELECT _steadytext_publish_model_ids($1::jsonb)`, [JSON.stringify(SIM_MODELS)]);
    for (;;) {
      const rows = await claim();
      if (rows.length === 0) break;
      assert.ok(rows.every((x) => x.dimensions === 3), 'the claim tells the worker the destination\'s size');
      assert.ok(rows.every((x) => x.vectors), 'vector and halfvec take the embeddings as real[] (pgvector\'s casts)');
      const out = await write(rows, rows.map((x) => vecs[texts.indexOf(x.input!)]));
      assert.deepEqual(out, { written: rows.length }, rows[0].name);
      written.set(rows[0].name, (written.get(rows[0].name) ?? 0) + out.written);
    }
  });
  assert.deepEqual(Object.fromEntries(written), { vec_embed: 4, half_embed: 4 });
  const got = await db.query<{ id: number; e: number[]; h: number[]; de: number; dh: number }>(
    `SELECT id, embedding::real[] AS e, half::real[] AS h,
            embedding <=> CAST($1::text AS vector(3)) AS de, half <=> CAST($1::text AS halfvec(3)) AS dh
     FROM vdocs ORDER BY id`,
    [writeResult('embed', vecs[0])],
  );
  for (const row of got.rows) {
    const v = vecs[row.id - 1];
    assert.deepEqual(f32(row.e), f32(v), `vdocs ${row.id}.embedding`);
    assert.deepEqual(f32(row.h), f16(v), `vdocs ${row.id}.half`);
    assert.ok(Math.abs(row.de - cosineDistance(f32(v), f32(vecs[0]))) < 1e-6, `vdocs ${row.id}: <=> ${row.de}`);
    assert.ok(Math.abs(row.dh - cosineDistance(f16(v), f16(vecs[0]))) < 1e-4, `vdocs ${row.id}: halfvec <=> ${row.dh}`);
  }
  assert.ok(got.rows[0].de < 1e-6, 'a vector is at distance 0 from itself');

  // A worker whose model gives 4 dimensions writes anyway (it should have
  // refused, _steadytext_pipeline_refuse): pgvector refuses the value, and
  // that row alone fails with pgvector's error; the others are written.
  await as('vec_alice', () => db.query(`UPDATE vdocs SET body = body || ' (changed)' WHERE id IN (1, 2)`));
  await as('vec_worker', async () => {
    const rows = (await claim()).filter((x) => x.name === 'vec_embed');
    assert.equal(rows.length, 2);
    assert.deepEqual(await write(rows, rows.map((_, i) => (i === 0 ? unitVector(77, 4) : unitVector(78, 3)))), { written: 1, failed: 1 });
  });
  const failures = await as('vec_alice', () =>
    db.query<{ row_key: unknown; error: string }>(`SELECT row_key, error FROM steadytext_pipeline_failures('vec_embed')`),
  );
  assert.equal(failures.rows.length, 1);
  assert.equal(failures.rows[0].error, 'expected 3 dimensions, not 4');
  const kept = await db.query<{ e: number[] }>(`SELECT embedding::real[] AS e FROM vdocs WHERE id = ($1::jsonb->>0)::int`, [
    JSON.stringify(failures.rows[0].row_key),
  ]);
  assert.deepEqual(f32(kept.rows[0].e), f32(vecs[Number((failures.rows[0].row_key as number[])[0]) - 1]), 'the refused row keeps its old value');
});

test('once a model\'s size is known, a pipeline into a vector of another size is refused at create', { timeout: 300_000 }, async () => {
  await pglite();
  // the failed write above taught the database nothing new: the model's size was learnt from its first written result (3)
  const known = await db.query<{ v: unknown }>(`SELECT value AS v FROM steadytext_config WHERE key = $1`, [`dimensions.${SIM_MODELS.embedding}`]);
  assert.deepEqual(known.rows, [{ v: 3 }]);
  await as('vec_alice', async () => {
    await db.exec(`CREATE TABLE vdocs4 (id integer PRIMARY KEY, body text, embedding vector(4))`);
    const err = await errorOf(`SELECT steadytext_pipeline_create('vec4', 'vdocs4', 'body', 'embedding')`);
    assert.equal(err?.code, '22023');
    assert.ok(err!.message.includes(`holds 4 dimensions, but the embedding model ${SIM_MODELS.embedding} gives 3`), err!.message);
  });
});
