// docs/limits.md's table of regex constructs is checked against the corpus:
// every construct of the corpus has a row, and every example the row names is
// a corpus entry with that verdict (so the table cannot drift from what the
// enqueue and the engine really do).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { REGEX_CORPUS } from './regexCorpus.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function examples(cell: string): Array<{ pattern: string; state?: string }> {
  const out: Array<{ pattern: string; state?: string }> = [];
  for (const m of cell.matchAll(/`((?:[^`])+)`(?: \((\w{5})\))?/g)) out.push({ pattern: m[1].replaceAll('\\|', '|'), state: m[2] });
  return out;
}

test('docs/limits.md: the regex constructs table agrees with the corpus', () => {
  const doc = readFileSync(path.join(ROOT, 'docs/limits.md'), 'utf8');
  const table = /<!-- constructs-table -->([\s\S]*?)<!-- \/constructs-table -->/.exec(doc);
  assert.ok(table, 'docs/limits.md has the constructs table');
  const rows = table[1].trim().split('\n').slice(2);
  const named = new Set<string>();
  let checked = 0;
  for (const row of rows) {
    // split on | not preceded by a backslash
    const cells = row.split(/(?<!\\)\|/).slice(1, -1).map((x) => x.trim());
    const [construct, accepted, refused] = cells;
    named.add(construct);
    for (const { pattern } of examples(accepted)) {
      const entry = REGEX_CORPUS.find((x) => x.pattern === pattern);
      assert.ok(entry, `${construct}: ${pattern} is in the corpus`);
      assert.equal(entry.verdict, 'ok', `${construct}: ${pattern} is accepted`);
      checked++;
    }
    for (const { pattern, state } of examples(refused ?? '')) {
      const entry = REGEX_CORPUS.find((x) => x.pattern === pattern);
      assert.ok(entry, `${construct}: ${pattern} is in the corpus`);
      assert.ok(Array.isArray(entry.verdict) && entry.verdict[0] === state, `${construct}: ${pattern} is refused with ${state}`);
      checked++;
    }
  }
  for (const { construct } of REGEX_CORPUS) assert.ok(named.has(construct), `the table has a row for ${construct}`);
  assert.ok(checked >= 50, `${checked} examples checked`);
});
