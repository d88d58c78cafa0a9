// Every grammar the engine writes is one llama.cpp's GBNF parser takes.
// llama.cpp refuses a repetition when the rules its body creates (a rule first
// named inside a parenthesised group counts too) times the count reach 2000,
// and a count above 2000; it reads an upper count above 2000 as unbounded.
// Patterns and schemas the enqueue accepts hit both: (ab){1000} written as
// (("a" "b")){1000} is 2 x 1000, a JSON string with maxLength 1000 was
// (char){0,1000} (char first named there: 2 x 1000), minLength 2500 a count of
// 2500; each failed with "Failed to parse grammar".
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { getLlama } from 'node-llama-cpp';
import type { Engine } from '../../src/engine/index.ts';
import { compileJsonSchema } from '../../src/engine/jsonSchemaGrammar.ts';
import { compileRegex } from '../../src/engine/regexGrammar.ts';
import { tinyEngine } from '../engine/tinyEngine.ts';

let engine: Engine;
before(async () => {
  engine = await tinyEngine();
});
after(async () => {
  await engine.dispose();
});

test("grammars past llama.cpp's repetition limits parse, and generate", async () => {
  const llama = await getLlama({ gpu: false, build: 'never' });
  const grammars = [
    compileRegex('(ab){1000}', 4096).gbnf,
    compileRegex('(a|b){1000}', 4096).gbnf,
    compileRegex('((a|b)?)*c', 1000).gbnf,
    compileJsonSchema({ type: 'string', maxLength: 1000 }, 4096).gbnf,
    compileJsonSchema({ type: 'string', minLength: 2500 }, 4096).gbnf,
    compileJsonSchema({ type: 'array', minItems: 2001, items: { const: 1 } }, 4096).gbnf,
    compileJsonSchema({ type: 'object', properties: { a: { type: 'string', pattern: '^(ab){1000}$' } } }, 4096).gbnf,
  ];
  for (const grammar of grammars) await llama.createGrammar({ grammar });
  // Generated too ((ab){1000} and (a|b){1000} are in the regex corpus, which generates them).
  const long = (await engine.generateJson('Text:', { type: 'string', minLength: 2001 }, { maxTokens: 2010, seed: 1 })) as string;
  assert.ok(long.length >= 2001, `${long.length} characters`);
  const short = (await engine.generateJson('Text:', { type: 'string', maxLength: 1000 }, { maxTokens: 4096, seed: 1 })) as string;
  assert.ok(short.length <= 1000);
});

test('an unbounded repeat gets at most 1999 repetitions, so output stays within max_tokens', () => {
  // llama.cpp reads [a-z]{1,4096} as [a-z]{1,}: output could outgrow max_tokens and be cut.
  assert.equal(compileRegex('[a-z]+x', 4096).gbnf, 'root ::= ([\\x61-\\x7a]{1,1999} "x")\n');
});
