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

test('docs/limits.md: the JSON schema keywords table agrees with the corpus', async () => {
  const { SCHEMA_CORPUS } = await import('./schemaCorpus.ts');
  const doc = readFileSync(path.join(ROOT, 'docs/limits.md'), 'utf8');
  const table = /<!-- schema-keywords-table -->([\s\S]*?)<!-- \/schema-keywords-table -->/.exec(doc);
  assert.ok(table, 'docs/limits.md has the schema keywords table');
  const has = (v: unknown, k: string): boolean =>
    v !== null && typeof v === 'object' && (Object.hasOwn(v, k) || Object.values(v).some((x) => has(x, k)));
  let rows = 0;
  for (const row of table[1].trim().split('\n').slice(2)) {
    const [kw, verdict] = row.split('|').slice(1, -1).map((x) => x.trim());
    const keyword = kw.replaceAll('`', '');
    if (verdict === 'supported') {
      assert.ok(SCHEMA_CORPUS.some((x) => x.verdict === 'ok' && has(x.schema, keyword)), `an accepted corpus schema uses ${keyword}`);
    } else {
      const state = /\((\w{5})\)/.exec(verdict)![1];
      assert.ok(
        SCHEMA_CORPUS.some((x) => Array.isArray(x.verdict) && x.verdict[0] === state && x.verdict[1] === keyword),
        `the corpus refuses ${keyword} with ${state}`,
      );
    }
    rows++;
  }
  assert.ok(rows >= 30);
});
