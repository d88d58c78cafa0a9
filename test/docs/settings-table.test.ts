// docs/worker.md's settings table is the resolver's table (src/settings.ts):
// a setting missing from the docs, or a default that differs, fails here; so
// does a STEADYTEXT_* variable the code reads that the table does not name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultOf, GUC_NAMES, resolveAll, SETTINGS, settingsTable, type Setting } from '../../src/settings.ts';
import { splitWorkerDoc } from './settingsTableBlock.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The docs table's rows as cells: flag (commands), environment, GUC, default, meaning. */
function docRows(): string[][] {
  const [, table] = splitWorkerDoc();
  return table
    .split('\n')
    .slice(2)
    .map((line) => line.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
}

test('docs/worker.md holds the settings table exactly as src/settings.ts renders it', () => {
  const [, table] = splitWorkerDoc();
  assert.equal(table, settingsTable(), 'docs/worker.md is stale: run `npx tsx test/docs/writeSettingsTable.ts`');
});

test('every setting has its own row with its flag, variable, GUC and resolved default', () => {
  const rows = docRows();
  // What the resolver returns with nothing set: the docs must say the same.
  const { values } = resolveAll({ env: {}, flags: {}, gucs: {} });
  for (const [key, s] of Object.entries(SETTINGS) as [keyof typeof SETTINGS, Setting][]) {
    const row = rows.find(
      ([flag, env]) => (s.env ? env === `\`${s.env}\`` : env === '') && (s.flag ? flag.startsWith(`\`${s.flag.replaceAll('|', '\\|')}\``) : flag === ''),
    );
    assert.ok(row, `no row for ${s.flag ?? s.env} in docs/worker.md`);
    if (s.guc) assert.equal(row[2], `\`${s.guc}\``, `${s.env}: GUC`);
    assert.equal(values[key], defaultOf(s), `${key}: resolved default`);
    const v = values[key];
    if (s.defaultText === undefined && v !== undefined) {
      const shown = s.parser.format(v as never);
      assert.ok(row[3].split('; ')[0].replaceAll('`', '') === shown, `${s.flag ?? s.env}: docs say '${row[3]}', the resolver's default is '${shown}'`);
    }
    for (const [entry, value] of Object.entries(s.commandDefaults ?? {})) {
      assert.ok(row[3].includes(`\`${entry}\`: `), `${s.flag ?? s.env}: the ${entry} default is not documented`);
      assert.equal(resolveAll({ env: {}, entry: entry as never }).values[key], value);
    }
  }
});

test('every STEADYTEXT_* variable the code names is a setting in the table', () => {
  const known = new Set(Object.values(SETTINGS as Record<string, Setting>).map((s) => s.env));
  const files = readdirSync(path.join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  const unknown = new Set<string>();
  for (const f of files) {
    const text = readFileSync(path.join(ROOT, 'src', f), 'utf8');
    // Whole names only: `STEADYTEXT_WORKER_*` and `STEADYTEXT_${ROLE}_SERVER` are families, not variables.
    for (const m of text.matchAll(/STEADYTEXT_[A-Z][A-Z0-9_]*[A-Z0-9](?![A-Z0-9_*])/g)) {
      if (!known.has(m[0])) unknown.add(`${m[0]} (src/${f})`);
    }
  }
  assert.deepEqual([...unknown], [], 'variables read or named in src/ that the settings table lacks');
});

test('README.md and docs/architecture.md, where they give the precedence, name every GUC the worker reads', () => {
  assert.equal(GUC_NAMES.length, 4);
  for (const file of ['README.md', 'docs/architecture.md']) {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    for (const guc of GUC_NAMES) assert.ok(text.includes(`\`${guc}\``), `${file} names ${guc}`);
  }
});
