// One corpus, two validators, zero disagreements: every pattern of the regex
// corpus gets the same verdict, SQLSTATE and character position from the
// enqueue's validator (PL/pgSQL) and the engine's compiler; every accepted
// pattern generates, on the tiny model, outputs that PostgreSQL's own regex
// engine (an independent implementation) finds to fully match.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Engine } from '../../src/engine/index.ts';
import { compileRegex, MAX_GRAMMAR_WORK, parseRegex, regexWork, StructuredInputError } from '../../src/engine/regexGrammar.ts';
import { rng, tinyEngine } from '../engine/tinyEngine.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { REGEX_CORPUS, type RegexVerdict } from './regexCorpus.ts';

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

function engineVerdict(pattern: string): RegexVerdict {
  try {
    parseRegex(pattern);
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof StructuredInputError, `${pattern}: ${err}`);
    return err.position === undefined ? [err.sqlstate] : [err.sqlstate, err.position];
  }
}

async function sqlVerdict(
  pattern: string,
): Promise<{ verdict: RegexVerdict; code?: string; message?: string; minBytes?: number; work: number | null }> {
  const r = await db.pool.query(`SELECT sqlstate, pos, min_bytes, work::float8 AS work FROM _steadytext_structured_regex($1)`, [pattern]);
  const { sqlstate, pos, min_bytes: minBytes, work } = r.rows[0];
  const verdict: RegexVerdict = sqlstate === null ? 'ok' : pos === null ? [sqlstate] : [sqlstate, pos];
  // The public function raises the same SQLSTATE and names the position.
  try {
    await db.pool.query(`SELECT steadytext_generate_regex_async('corpus', $1, max_tokens := 4096)`, [pattern]);
    return { verdict, minBytes, work };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { verdict, code: e.code, message: e.message, minBytes, work };
  }
}

/** The engine's grammarWork, or null where the enqueue has none (refused before it measures). */
function engineWork(pattern: string, verdict: RegexVerdict): number | null {
  if (verdict !== 'ok' && verdict[0] !== '54000') return null;
  try {
    return regexWork(pattern) ?? null;
  } catch {
    return null; // a count above 1000 is refused by the parser
  }
}

test(`regex corpus (${REGEX_CORPUS.length} patterns): the enqueue and the engine agree with the expected verdict`, async () => {
  assert.ok(REGEX_CORPUS.length >= 200);
  for (const { pattern, verdict } of REGEX_CORPUS) {
    const eng = engineVerdict(pattern);
    const sql = await sqlVerdict(pattern);
    assert.deepEqual(eng, verdict, `engine verdict on ${JSON.stringify(pattern)}`);
    assert.deepEqual(sql.verdict, verdict, `SQL verdict on ${JSON.stringify(pattern)}`);
    // The same sampler work (the rule), measured alike, refused or not.
    assert.equal(sql.work, engineWork(pattern, verdict), `grammar work of ${JSON.stringify(pattern)}`);
    if (verdict === 'ok') {
      assert.equal(sql.code, undefined, `${pattern} is enqueued: ${sql.message}`);
      // Both count the same shortest output, which max_tokens must cover.
      assert.equal(sql.minBytes, compileRegex(pattern, Infinity).minBytes, `shortest output of ${JSON.stringify(pattern)}`);
    } else {
      assert.equal(sql.code, verdict[0], `${pattern}: ${sql.message}`);
      assert.match(sql.message!, /steadytext_generate_regex_async: pattern/);
      if (verdict[1] !== undefined) assert.match(sql.message!, new RegExp(`at character ${verdict[1]}\\b`), sql.message);
    }
  }
});

test('max_tokens below the shortest match is refused at the call (22023), not failed later', async () => {
  for (const [pattern, need] of [['a{1000}', 1000], ['\\d{3}-\\d{4}', 8], ['(東京|x{5})', 5], ['[äö]{4}', 8]] as const) {
    for (const f of ['steadytext_generate_regex_async', 'steadytext_generate_regex']) {
      let err: (Error & { code?: string }) | undefined;
      await db.pool.query(`SELECT ${f}('p', $1, max_tokens := $2)`, [pattern, need - 1]).catch((e) => {
        err = e;
      });
      assert.equal(err?.code, '22023', `${f} ${pattern} at ${need - 1}: ${err?.message}`);
      assert.match(err!.message, new RegExp(`${f}: max_tokens \\(${need - 1}\\) is too small for pattern: its shortest match is ${need} bytes`));
    }
    await db.pool.query(`SELECT steadytext_generate_regex_async('p', $1, max_tokens := $2)`, [pattern, need]);
    assert.equal(compileRegex(pattern, Infinity).minBytes, need);
  }
});

/** A random pattern of nested groups, alternations and every kind of quantifier, {0} included. */
function randomPattern(r: ReturnType<typeof rng>, depth = 0): string {
  const k = r.int(0, depth > 3 ? 2 : 6);
  let s: string;
  if (k <= 2) s = r.pick(['a', 'b', '[ab]', '.', '\\d', 'x', '()']);
  else if (k <= 4) s = Array.from({ length: r.int(1, 3) }, () => randomPattern(r, depth + 1)).join('');
  else s = `(${Array.from({ length: r.int(1, 3) }, () => randomPattern(r, depth + 1)).join('|')})`;
  if (r.int(0, 9) < 4) return s;
  const atom = /^(\(.*\)|\[ab\]|\\d|.)$/.test(s) ? s : `(${s})`;
  const n = r.int(0, 4);
  return atom + r.pick(['?', '*', '+', `{${n}}`, `{${n},}`, `{${n},${n + r.int(0, 4)}}`, '{0}']);
}

test('500 random patterns: the enqueue and the engine measure the same sampler work', async () => {
  const r = rng(20);
  const seen = { measured: 0, over: 0 };
  for (let k = 0; k < 500; k++) {
    const pattern = randomPattern(r);
    const engine = regexWork(pattern) ?? null;
    const sql = await db.pool.query(`SELECT work::float8 AS work FROM _steadytext_structured_regex($1)`, [pattern]);
    assert.equal(sql.rows[0].work, engine, `grammar work of ${JSON.stringify(pattern)}`);
    if (engine !== null) seen.measured++;
    if (engine !== null && engine > MAX_GRAMMAR_WORK) seen.over++;
  }
  // The generator reaches both sides of the limit.
  assert.ok(seen.measured > 400 && seen.over > 5, JSON.stringify(seen));
});

/** The pattern as PostgreSQL reads it, anchored to the whole string. */
function pgAnchored(pattern: string, pg?: string): string {
  let body = pg ?? pattern;
  if (body.startsWith('^')) body = body.slice(1);
  const m = /(\\*)\$$/.exec(body);
  if (m && m[1].length % 2 === 0) body = body.slice(0, -1);
  return `^(?:${body})$`;
}

test('every accepted pattern generates outputs that fully match it (checked by PostgreSQL ~)', async () => {
  let n = 0;
  const failures: string[] = [];
  let expected = 0;
  for (const [k, { pattern, verdict, pg, seeds = 2 }] of REGEX_CORPUS.entries()) {
    if (verdict !== 'ok') continue;
    expected += seeds;
    const { minBytes } = compileRegex(pattern, 4096);
    const maxTokens = Math.min(4096, Math.max(24, minBytes + 12));
    for (const seed of Array.from({ length: seeds }, (_, i) => k + 1000 * i)) {
      const out = await engine.generateRegex(`Example ${k}:`, pattern, { maxTokens, seed }).catch((err: Error) => {
        failures.push(`pattern ${JSON.stringify(pattern)} (max_tokens ${maxTokens}, seed ${seed}): ${err.message}`);
        return null;
      });
      if (out === null) continue;
      const r = await db.pool.query(`SELECT $1::text ~ $2 AS ok`, [out, pgAnchored(pattern, pg)]);
      assert.ok(r.rows[0].ok, `pattern ${JSON.stringify(pattern)} (max_tokens ${maxTokens}) output ${JSON.stringify(out)}`);
      n++;
    }
  }
  assert.deepEqual(failures, []);
  assert.equal(n, expected, 'every output of every accepted pattern checked');
});

test('backtracking shapes are checked in time linear in the output', () => {
  // 20000 characters through patterns that take a backtracking engine
  // exponential time: each check visits every NFA state at most once per character.
  const text = `${'a'.repeat(20000)}!`;
  for (const p of ['(a|a){255}b', '(a+)+$', '(a|aa)*c', '((a*)*)*b', '(x+x+)+y', '(.*a){12}']) {
    const { matcher } = compileRegex(p, 4096);
    assert.equal(matcher.fullMatch(text), false, p);
  }
});
