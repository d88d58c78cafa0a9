// docs/limits.md gives every limit of src/limits.ts with its default (its
// order, its words for what each limits and the SQLSTATE are its own).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LIMITS } from '../../src/limits.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('docs/limits.md lists every limit with its default', () => {
  const doc = readFileSync(path.join(ROOT, 'docs/limits.md'), 'utf8');
  const start = doc.indexOf('| name | default |');
  assert.ok(start >= 0, 'docs/limits.md has the limits table');
  const rows = doc
    .slice(start)
    .split('\n\n')[0]
    .split('\n')
    .slice(2)
    .map((line) => line.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
  assert.deepEqual(rows.map(([name]) => name).sort(), LIMITS.map((l) => `\`${l.name}\``).sort(), 'the same limits');
  for (const limit of LIMITS) {
    const [, dflt] = rows.find(([name]) => name === `\`${limit.name}\``)!;
    assert.match(dflt, new RegExp(`^${limit.default}( \\(|$)`), `${limit.name}: docs say '${dflt}', the default is ${limit.default}`);
  }
});
