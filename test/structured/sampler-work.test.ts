// Everything the enqueue accepts, the engine samples in bounded time per
// token. llama.cpp's grammar sampler keeps a parse stack per grammar position
// that can match the next character; nested optional repeats made that
// explode (([ab]?[ab]?){200} held a worker for minutes), and some accepted
// patterns did not even parse ((a?){1000}: "Failed to parse grammar"). The
// rule (grammarWork / schemaWork <= MAX_GRAMMAR_WORK, computed alike by the
// enqueue and the engine, docs/limits.md) refuses the first kind at the call
// (the second: grammar-parse-limits.test.ts). Here: refused shapes get the SQL
// error and write nothing; the worst shapes the rule accepts sample each token
// within a small multiple of a plain pattern's token, measured on the tiny
// model in the same run.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Engine } from '../../src/engine/index.ts';
import { schemaWork } from '../../src/engine/jsonSchemaGrammar.ts';
import { samplerTestSignals } from '../../src/engine/llamaEngine.ts';
import { MAX_GRAMMAR_WORK, regexWork, StructuredInputError } from '../../src/engine/regexGrammar.ts';
import { tinyEngine } from '../engine/tinyEngine.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

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

/** n alternatives behind an 'x', all starting with 'y': after the x, n stacks at once. */
const fan = (n: number) => `x(${Array.from({ length: n }, (_, i) => `y${String(i).padStart(4, '0')}`).join('|')})`;
/** Three array branches that all start with '[', each holding the same anyOf, `depth` deep. */
const nestedAnyOf = (depth: number): unknown =>
  depth === 0 ? { type: 'integer' } : { anyOf: [1, 2, 3].map(() => ({ type: 'array', minItems: 1, maxItems: 2, items: nestedAnyOf(depth - 1) })) };
const values = (n: number) => Array.from({ length: n }, (_, i) => `v${i}`);

type Shape = { regex: string; schema?: undefined; maxTokens: number } | { schema: unknown; regex?: undefined; maxTokens: number };

async function enqueue(shape: Shape): Promise<void> {
  if (shape.regex !== undefined) {
    await db.pool.query(`SELECT steadytext_generate_regex_async('p', $1, max_tokens := $2)`, [shape.regex, shape.maxTokens]);
  } else {
    await db.pool.query(`SELECT steadytext_generate_json_async('p', $1::jsonb, max_tokens := $2)`, [JSON.stringify(shape.schema), shape.maxTokens]);
  }
}

const queued = async () => (await db.pool.query('SELECT count(*)::int AS n FROM steadytext_queue')).rows[0].n as number;

test('shapes over the limit: 54000 naming the argument, nothing written; the engine refuses them alike', async () => {
  const refused: Shape[] = [
    { regex: '([ab]?[ab]?){200}', maxTokens: 400 },
    { regex: '(a?){1000}', maxTokens: 1000 },
    { regex: '(a?){28}', maxTokens: 64 },
    { regex: '((a|b)?){15}', maxTokens: 64 },
    { regex: fan(401), maxTokens: 64 },
    { schema: nestedAnyOf(4), maxTokens: 200 },
    { schema: { enum: values(399) }, maxTokens: 64 },
  ];
  for (const shape of refused) {
    const what = shape.regex ?? JSON.stringify(shape.schema).slice(0, 60);
    const work = shape.regex !== undefined ? regexWork(shape.regex)! : schemaWork(shape.schema);
    assert.ok(work > MAX_GRAMMAR_WORK, `${what}: work ${work}`);
    const before = await queued();
    let err: (Error & { code?: string }) | undefined;
    await enqueue(shape).catch((e) => {
      err = e;
    });
    assert.equal(err?.code, '54000', `${what}: ${err?.message}`);
    const arg = shape.regex !== undefined ? 'steadytext_generate_regex_async: pattern has' : 'steadytext_generate_json_async: schema:';
    assert.ok(err!.message.startsWith(arg), err!.message);
    assert.match(err!.message, new RegExp(`sampler work per character is ${work}, over the limit of ${MAX_GRAMMAR_WORK}`));
    assert.equal(await queued(), before, `${what}: nothing enqueued`);
    // The engine gives the same verdict on a job that reached it another way.
    const run = shape.regex !== undefined
      ? engine.generateRegex('p', shape.regex, { maxTokens: shape.maxTokens, seed: 1 })
      : engine.generateJson('p', shape.schema, { maxTokens: shape.maxTokens, seed: 1 });
    await assert.rejects(run, (e: unknown) => e instanceof StructuredInputError && e.sqlstate === '54000', what);
  }
  // The synchronous function validates the same way.
  await assert.rejects(db.pool.query(`SELECT steadytext_generate_regex('p', '(a?){1000}')`), { code: '54000' });
});

/**
 * Each token's sampling time (from the start of sampling: a pattern's one-off
 * compile and grammar setup are not a token), the fastest of `runs` runs with
 * the same seed, which sample the same tokens: noise on a shared machine hits
 * one run's token, not all of them.
 */
async function tokenTimes(shape: Shape, runs = 5): Promise<number[]> {
  const best: number[] = [];
  for (let r = 0; r < runs; r++) {
    const times: number[] = [];
    let last = 0;
    samplerTestSignals.start = () => {
      last = performance.now();
    };
    samplerTestSignals.token = () => {
      const now = performance.now();
      times.push(now - last);
      last = now;
    };
    try {
      const opts = { maxTokens: shape.maxTokens, seed: 7 };
      if (shape.regex !== undefined) await engine.generateRegex('Example:', shape.regex, opts);
      else await engine.generateJson('Example:', shape.schema, opts);
    } finally {
      samplerTestSignals.start = undefined;
      samplerTestSignals.token = undefined;
    }
    times.forEach((t, i) => {
      best[i] = Math.min(best[i] ?? Infinity, t);
    });
  }
  return best;
}

// Derived from measurement (docs/engine.md, "Sampler work"): at the limit a
// token costs about 1 ms more on the tiny model (0.1 us a unit of work),
// against 0.5-0.6 ms for a plain pattern's slowest token; the shapes below
// measured 0.9-8.3x. 20x leaves room for a loaded 2-core machine; what the
// old engine accepted ran 2000x and more (([ab]?[ab]?){100}: 2.9 s for one
// token; ((a|b)?)*c at max_tokens 400: over 60 s).
const RATIO = 20;

test(`the worst shapes the rule accepts sample every token within ${RATIO}x a plain pattern's token`, { timeout: 300_000 }, async () => {
  const worst: Shape[] = [
    { regex: '(a?){27}', maxTokens: 64 },
    { regex: '([ab]?[ab]?){13}', maxTokens: 64 },
    { regex: '((a|b)?){14}', maxTokens: 64 },
    { regex: fan(400), maxTokens: 64 },
    { regex: '(a|b|ab){200}', maxTokens: 400 },
    // unbounded repeats the engine bounds itself: its copies stay within the limit too
    { regex: '((a|b)?)*c', maxTokens: 400 },
    { regex: '((a|a|a|a)?)*c', maxTokens: 1000 },
    { regex: '(a|aa)*c', maxTokens: 4096 },
    { regex: `${'(a'.repeat(100)}${')b'.repeat(100)}`, maxTokens: 200 },
    { schema: nestedAnyOf(3), maxTokens: 200 },
    { schema: { enum: values(398) }, maxTokens: 64 },
    { schema: { anyOf: Array.from({ length: 43 }, (_, i) => ({ type: 'string', maxLength: 20 + i })) }, maxTokens: 200 },
  ];
  const plain = Math.max(...(await tokenTimes({ regex: '[a-z]{64}', maxTokens: 64 })));
  const report: string[] = [];
  for (const shape of worst) {
    const what = shape.regex?.slice(0, 40) ?? JSON.stringify(shape.schema).slice(0, 40);
    const work = shape.regex !== undefined ? regexWork(shape.regex)! : schemaWork(shape.schema);
    assert.ok(work <= MAX_GRAMMAR_WORK, `${what}: work ${work}`);
    await enqueue(shape); // the enqueue accepts it
    const times = await tokenTimes(shape);
    const slowest = Math.max(...times);
    report.push(`${what}: work ${work}, ${times.length} tokens, slowest ${slowest.toFixed(2)} ms (${(slowest / plain).toFixed(1)}x)`);
    assert.ok(slowest <= RATIO * plain, `${what}: a token took ${slowest.toFixed(2)} ms, ${(slowest / plain).toFixed(1)}x the plain pattern's ${plain.toFixed(2)} ms`);
  }
  console.log(`plain [a-z]{64}: slowest token ${plain.toFixed(2)} ms\n${report.join('\n')}`);
});
