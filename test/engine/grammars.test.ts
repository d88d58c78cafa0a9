// Structured generation is valid by construction: 100 seeded JSON schemas, 100
// regexes, 100 choice sets. An output is either valid, or the call raises the
// clear max_tokens EngineError; an invalid output is never returned.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ajv } from 'ajv';
import { EngineError, EngineInputError, type Engine } from '../../src/engine/index.ts';
import { compileRegex, StructuredInputError } from '../../src/engine/regexGrammar.ts';
import { rng, tinyEngine } from './tinyEngine.ts';

let engine: Engine;
before(async () => {
  engine = await tinyEngine();
});
after(() => engine.dispose());

type R = ReturnType<typeof rng>;

function randomSchema(r: R, depth = 0): Record<string, unknown> {
  const kinds = depth >= 2 ? ['string', 'integer', 'number', 'boolean', 'null', 'enum'] : ['string', 'integer', 'number', 'boolean', 'null', 'enum', 'object', 'object', 'array', 'anyOf'];
  switch (r.pick(kinds)) {
    case 'string': {
      const s: Record<string, unknown> = { type: 'string' };
      if (r.next() < 0.3) s.minLength = r.int(1, 3);
      if (r.next() < 0.4) s.maxLength = r.int(3, 12);
      return s;
    }
    case 'integer':
      return r.next() < 0.5 ? { type: 'integer', minimum: 0 } : { type: 'integer' };
    case 'number':
      return { type: 'number' };
    case 'boolean':
      return { type: 'boolean' };
    case 'null':
      return { type: 'null' };
    case 'enum':
      return { enum: ['red', 'green', 'blue', 7, true, null].slice(0, r.int(1, 6)) };
    case 'object': {
      const n = r.int(1, 3);
      const properties: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) properties[r.pick(['id', 'name', 'age', 'tags', 'ok', 'note', 'x', 'score'])] = randomSchema(r, depth + 1);
      return { type: 'object', properties, required: Object.keys(properties), additionalProperties: false };
    }
    case 'array': {
      const s: Record<string, unknown> = { type: 'array', items: randomSchema(r, depth + 1) };
      if (r.next() < 0.5) s.minItems = r.int(0, 2);
      if (r.next() < 0.5) s.maxItems = r.int(2, 4);
      return s;
    }
    default:
      return { anyOf: [randomSchema(r, depth + 1), randomSchema(r, depth + 1)] };
  }
}

const BUDGET = /max_tokens \(\d+\) (reached before|is too small)/;

test('100 random JSON schemas: every output parses and validates', async () => {
  const r = rng(2024);
  const ajv = new Ajv({ strict: false });
  let valid = 0;
  let tooSmall = 0;
  for (let i = 0; i < 100; i++) {
    const schema = randomSchema(r);
    const validate = ajv.compile(schema);
    try {
      const value = await engine.generateJson(`Item ${i}:`, schema, { maxTokens: 64, seed: i });
      assert.ok(validate(value), `schema ${JSON.stringify(schema)} value ${JSON.stringify(value)}: ${ajv.errorsText(validate.errors)}`);
      valid++;
    } catch (err) {
      assert.ok(err instanceof EngineError && /is too small/.test(err.message), `schema ${JSON.stringify(schema)}: ${err}`);
      tooSmall++;
    }
  }
  // Valid by construction: the budget never runs out mid-document.
  assert.ok(valid >= 90, `valid ${valid}, refused as too small ${tooSmall}`);
});

test('JSON at the token limit is still complete', async () => {
  const schema = { type: 'object', properties: { a: { type: 'string' }, b: { type: 'array', items: { type: 'string' } } } };
  for (const maxTokens of [15, 16, 20, 30]) {
    const v = (await engine.generateJson('x', schema, { maxTokens, seed: 1 })) as { a: string; b: string[] };
    assert.equal(typeof v.a, 'string');
    assert.ok(Array.isArray(v.b));
  }
  await assert.rejects(engine.generateJson('x', schema, { maxTokens: 14, seed: 1 }), /max_tokens \(14\) is too small/);
});

function randomRegex(r: R, depth = 0): string {
  const atoms = [
    () => r.pick(['a', 'b', 'x', 'Z', '7', '-', '_', ' ', ':', '@']),
    () => r.pick(['\\d', '\\w', '\\s', '\\D', '\\W', '\\S', '.']),
    () => r.pick(['\\.', '\\(', '\\)', '\\[', '\\*', '\\+', '\\?', '\\|', '\\{', '\\$', '\\^', '\\/']),
    () => r.pick(['[a-f0-9]', '[A-Z]', '[^abc]', '[\\d_-]', '[^\\s]', '[xyz.]']),
    () => (depth < 2 ? `(${randomRegex(r, depth + 1)}|${randomRegex(r, depth + 1)})` : 'q'),
    () => (depth < 2 ? `(?:${randomRegex(r, depth + 1)})` : 'w'),
  ];
  const quants = ['', '', '', '?', '*', '+', '{2}', '{1,3}', '{2,}', '{0,2}'];
  let out = '';
  const n = r.int(1, 4);
  for (let i = 0; i < n; i++) out += r.pick(atoms)() + r.pick(quants);
  return out;
}

test('100 random regexes: every output fully matches', async () => {
  const r = rng(7);
  let valid = 0;
  let budget = 0;
  let ambiguous = 0;
  for (let i = 0; i < 100; i++) {
    let pattern = randomRegex(r);
    if (r.next() < 0.2) pattern = `^${pattern}`;
    if (r.next() < 0.2) pattern = `${pattern}$`;
    const body = pattern.replace(/^\^/, '').replace(/(?<!\\)\$$/, '');
    const check = new RegExp(`^(?:${body})$`, 'u'); // independent of the engine's own matcher
    try {
      const out = await engine.generateRegex(`Value ${i}:`, pattern, { maxTokens: 24, seed: i });
      assert.ok(check.test(out), `pattern ${pattern} output ${JSON.stringify(out)}`);
      valid++;
    } catch (err) {
      // Nested unbounded repeats can make the grammar too costly to sample:
      // refused up front (54000, as the enqueue refuses them).
      if (err instanceof StructuredInputError && err.sqlstate === '54000' && /sampler work per character/.test(err.message)) {
        ambiguous++;
        continue;
      }
      assert.ok(err instanceof EngineError && BUDGET.test(err.message), `pattern ${pattern}: ${err}`);
      budget++;
    }
  }
  assert.ok(valid >= 60, `valid ${valid}, ran out of tokens ${budget}, too ambiguous ${ambiguous}`);
  assert.ok(ambiguous <= 5, `${ambiguous} random patterns refused as too ambiguous`);
  console.log(`regex: ${valid} valid, ${budget} hit max_tokens (clear error), ${ambiguous} refused as too ambiguous`);
});

test('100 random choice sets: every output is exactly one choice', async () => {
  const r = rng(11);
  const words = ['yes', 'no', 'maybe', 'positive', 'negative', 'neutral', 'red', 'reddish', 'a b', 'x-y', 'çà', '東京', 'ok!', ''];
  let valid = 0;
  let budget = 0;
  for (let i = 0; i < 100; i++) {
    const n = r.int(2, 5);
    const set = new Set<string>();
    while (set.size < n) set.add(r.pick(words) || `w${r.int(0, 999)}`);
    const choices = [...set];
    try {
      const out = await engine.generateChoice(`Pick ${i}:`, choices, { maxTokens: 16, seed: i });
      assert.ok(choices.includes(out), `choices ${JSON.stringify(choices)} output ${JSON.stringify(out)}`);
      valid++;
    } catch (err) {
      assert.ok(err instanceof EngineError && BUDGET.test(err.message), `${err}`);
      budget++;
    }
  }
  assert.equal(valid, 100);
});

test('unsupported regex features are rejected with EngineInputError', async () => {
  const bad = ['(a)\\1', '(?=a)b', '(?!a)b', '(?<=a)b', '\\bword', 'a*?', 'a+?', 'a{1,3}?', '\\p{L}', 'a^b', 'a$b', '(a', 'a)', '*a', '[abc', '\\k<x>', '(?<n>a)', 'a**'];
  for (const p of bad) {
    await assert.rejects(engine.generateRegex('x', p, { maxTokens: 8, seed: 1 }), EngineInputError, p);
  }
});

test('the regex converter agrees with JavaScript on the supported subset', () => {
  const cases: Array<[string, string[], string[]]> = [
    ['\\d{3}-\\d{4}', ['123-4567'], ['12-4567', '123-45678', 'abc-defg']],
    ['^(cat|dog)s?$', ['cat', 'dogs'], ['cats!', 'bird']],
    ['[^a-c]+', ['xyz', 'D'], ['abc', '']],
    ['\\w+@\\w+\\.com', ['me@x.com'], ['me@x.org']],
    ['a{2,}', ['aa', 'aaaa'], ['a']],
    ['.', ['x', ' '], ['\n', 'xy']],
    ['[éè]', ['é'], ['e']],
    ['[\\d\\s]*', ['1 2', ''], ['a']],
  ];
  for (const [p, yes, no] of cases) {
    const { matcher } = compileRegex(p, 64);
    for (const s of yes) assert.ok(matcher.fullMatch(s), `${p} should match ${JSON.stringify(s)}`);
    for (const s of no) assert.ok(!matcher.fullMatch(s), `${p} should not match ${JSON.stringify(s)}`);
  }
});
