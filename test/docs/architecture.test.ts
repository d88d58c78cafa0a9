// docs/architecture.md stays a picture of the code as it is: every src/ path
// it names exists, every folder of src/ has its line in "Where each file
// sits", every file a folder's line names is in that folder, and every
// statement file of src/db/ is named there (the folder listing is the list
// of ways the code touches the database).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '../..');
const doc = readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8');

function folders(dir: string): string[] {
  const out = [dir];
  for (const e of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...folders(`${dir}/${e.name}`));
  }
  return out;
}

/** The rows of the "Where each file sits" table: first cell → the rest. */
function layoutRows(): Map<string, string> {
  const start = doc.indexOf('## Where each file sits');
  assert.ok(start >= 0, 'docs/architecture.md has "Where each file sits"');
  const rows = new Map<string, string>();
  for (const line of doc.slice(start).split('\n')) {
    const m = /^\| `([^`]+)`[^|]*\| (.*) \|$/.exec(line);
    if (m) rows.set(m[1], m[2]);
  }
  return rows;
}

test('every src/ path docs/architecture.md names exists', () => {
  const named = [...new Set([...doc.matchAll(/(?<![\w/.-])src\/[A-Za-z0-9_./-]*[A-Za-z0-9_/]/g)].map((m) => m[0]))];
  assert.ok(named.length > 10, 'the page names the files it describes');
  const missing = named.filter((p) => !existsSync(path.join(ROOT, p)));
  assert.deepEqual(missing, [], 'paths named in docs/architecture.md that are not in the tree');
});

test('every folder of src/ has its line in "Where each file sits", and the files a line names are in its folder', () => {
  const rows = layoutRows();
  const missing = folders('src').slice(1).filter((d) => !rows.has(`${d}/`));
  assert.deepEqual(missing, [], 'folders of src/ without a line in docs/architecture.md');
  for (const [folder, text] of rows) {
    if (!folder.endsWith('/')) continue;
    for (const [, name] of text.matchAll(/`([A-Za-z0-9_]+\.ts)`/g)) {
      assert.ok(existsSync(path.join(ROOT, folder, name)), `${folder}${name}, named on its folder's line, exists`);
    }
  }
});

test('every statement file of src/db/ is named on its folder\'s line', () => {
  const rows = layoutRows();
  for (const dir of folders('src/db').slice(1)) {
    const text = rows.get(`${dir}/`) ?? '';
    const unnamed = readdirSync(path.join(ROOT, dir)).filter((f) => f.endsWith('.ts') && !text.includes(`\`${f}\``));
    assert.deepEqual(unnamed, [], `files of ${dir}/ not named in docs/architecture.md`);
  }
});
