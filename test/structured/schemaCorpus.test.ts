// One corpus, two validators, zero disagreements: every schema of the corpus
// gets the same verdict and keyword from the enqueue's validator (PL/pgSQL)
// and the engine's checker; every accepted schema generates, on the tiny
// model, documents that an independent ajv (JSON Schema 2020-12, ajv-formats,
// JavaScript's own RegExp) finds valid.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { EngineError, type Engine } from '../../src/engine/index.ts';
import { checkSchema, schemaMinBytes, schemaWork } from '../../src/engine/jsonSchemaGrammar.ts';
import { StructuredInputError } from '../../src/engine/regexGrammar.ts';
import { tinyEngine } from '../engine/tinyEngine.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { SCHEMA_CORPUS, type SchemaVerdict } from './schemaCorpus.ts';

let db: TestDatabase;
let engine: Engine;
before(async () => {
  db = await createTestDatabase();
  engine = await tinyEngine();
});
after(async () => {
  await engine.dispose();
  await db.drop();
});

function engineVerdict(schema: unknown): SchemaVerdict {
  try {
    checkSchema(schema);
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof StructuredInputError, `${JSON.stringify(schema)}: ${err}`);
    return [err.sqlstate, err.keyword ?? ''];
  }
}

test(`schema corpus (${SCHEMA_CORPUS.length} schemas): the enqueue and the engine agree with the expected verdict`, async () => {
  assert.ok(SCHEMA_CORPUS.length >= 150);
  for (const { schema, verdict } of SCHEMA_CORPUS) {
    const json = JSON.stringify(schema);
    assert.deepEqual(engineVerdict(schema), verdict, `engine verdict on ${json}`);
    const r = await db.pool.query(`SELECT sqlstate, keyword FROM _steadytext_structured_schema_error($1::jsonb)`, [json]);
    const sql: SchemaVerdict = r.rows[0].sqlstate === null ? 'ok' : [r.rows[0].sqlstate, r.rows[0].keyword];
    assert.deepEqual(sql, verdict, `SQL verdict on ${json}`);
    // The schema's sampler work (the rule), measured alike by both, on every schema the walk lets through.
    if (verdict === 'ok' || (verdict[0] === '54000' && verdict[1] === '')) {
      const w = await db.pool.query(`SELECT _steadytext_structured_schema_work($1::jsonb)::float8 AS w`, [json]);
      assert.equal(w.rows[0].w, schemaWork(schema), `grammar work of ${json}`);
    }
    let err: (Error & { code?: string }) | undefined;
    await db.pool.query(`SELECT steadytext_generate_json_async('corpus', $1::jsonb)`, [json]).catch((e) => {
      err = e;
    });
    if (verdict === 'ok') {
      assert.equal(err, undefined, `${json} is enqueued`);
      // Both count the same smallest document, which max_tokens must cover.
      const m = await db.pool.query(`SELECT _steadytext_structured_min_bytes($1::jsonb)::int AS n`, [json]);
      assert.equal(m.rows[0].n, schemaMinBytes(schema), `smallest document of ${json}`);
    } else {
      assert.equal(err?.code, verdict[0], `${json}: ${err?.message}`);
      assert.match(err!.message, /steadytext_generate_json_async: schema/);
      if (verdict[1]) assert.ok(err!.message.includes(`.${verdict[1]} `), `${err!.message} names ${verdict[1]}`);
    }
  }
});

test('max_tokens below the smallest document is refused at the call (22023), not failed later', async () => {
  const cases: Array<[unknown, number]> = [
    [{ type: 'object', properties: { name: { type: 'string', minLength: 20 }, age: { type: 'integer', minimum: 100 } }, required: ['name'] }, 41],
    [{ type: 'string', format: 'date-time' }, 2 + 20],
    [{ type: 'array', prefixItems: [{ const: 'Grüße' }, { enum: ['東京', 'x-ray'] }] }, 19],
  ];
  for (const [schema, need] of cases) {
    assert.equal(schemaMinBytes(schema), need, JSON.stringify(schema));
    for (const f of ['steadytext_generate_json_async', 'steadytext_generate_json']) {
      let err: (Error & { code?: string }) | undefined;
      await db.pool.query(`SELECT ${f}('p', $1::jsonb, max_tokens := $2)`, [JSON.stringify(schema), need - 1]).catch((e) => {
        err = e;
      });
      assert.equal(err?.code, '22023', `${f} at ${need - 1}: ${err?.message}`);
      assert.match(err!.message, new RegExp(`${f}: max_tokens \\(${need - 1}\\) is too small for schema: its smallest document is ${need} bytes`));
    }
    await db.pool.query(`SELECT steadytext_generate_json_async('p', $1::jsonb, max_tokens := $2)`, [JSON.stringify(schema), need]);
  }
});

test('every accepted schema generates documents that validate (independent ajv)', async () => {
  const ajv = new Ajv2020({ strict: false, validateSchema: false, allErrors: true });
  addFormatsModule.default(ajv);
  let n = 0;
  const failures: string[] = [];
  for (const [k, { schema, verdict, seeds = 2 }] of SCHEMA_CORPUS.entries()) {
    if (verdict !== 'ok') continue;
    const validate = ajv.compile(schema as object);
    for (const seed of Array.from({ length: seeds }, (_, i) => k + 1000 * i)) {
      let value: unknown;
      for (const maxTokens of [96, 400]) {
        try {
          value = await engine.generateJson(`Record ${k}:`, schema, { maxTokens, seed });
          break;
        } catch (err) {
          // Only a budget too small for the schema's smallest document may be retried.
          if (!(err instanceof EngineError && /is too small/.test(err.message)) || maxTokens === 400) {
            failures.push(`${JSON.stringify(schema)} seed ${seed}: ${(err as Error).message}`);
            value = undefined;
            break;
          }
        }
      }
      if (value === undefined) continue;
      if (!validate(value)) failures.push(`${JSON.stringify(schema)} seed ${seed}: ${JSON.stringify(value)}: ${ajv.errorsText(validate.errors)}`);
      n++;
    }
  }
  assert.deepEqual(failures, []);
  assert.ok(n >= 200, `${n} documents checked`);
});
