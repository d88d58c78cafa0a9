// The limits' defaults have one home, src/limits.ts: the build writes
// _steadytext_limit_defaults() from it (-- @limits lines), and the installed
// function returns exactly that table. docs/limits.md is checked against it in
// test/docs/limits-table.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createTestDatabase } from '../helpers/db.ts';
import { SQL_DIR } from '../../src/db/schema/migrate.ts';
import { expandLimits, FRAGMENTS } from '../../src/db/schema/limitsSql.ts';
import { LIMITS } from '../../src/limits.ts';

test('every -- @limits line in sql/src names a fragment, and every fragment is used', () => {
  const used = new Set<string>();
  for (const f of readdirSync(path.join(SQL_DIR, 'src')).filter((f) => f.endsWith('.sql'))) {
    const text = readFileSync(path.join(SQL_DIR, 'src', f), 'utf8');
    for (const m of text.matchAll(/^[ \t]*-- @limits[ \t]*(\S*)/gm)) used.add(m[1]);
    expandLimits(text, f); // throws on an unknown fragment
  }
  assert.deepEqual([...used].sort(), Object.keys(FRAGMENTS).sort());
  assert.throws(() => expandLimits('    -- @limits nonsense\n', 'x.sql'), /x\.sql: unknown fragment 'nonsense'/);
  assert.equal(
    expandLimits('  VALUES\n    -- @limits defaults\n  )', 'x.sql').split('\n')[2],
    "    (1,  'max_tokens',           4096::bigint,       'largest max_tokens a generate* function accepts (smallest is 1)'),",
  );
});

test('the installed _steadytext_limit_defaults() is the table, in order', async () => {
  const db = await createTestDatabase();
  try {
    const r = await db.pool.query(`SELECT ord, name, value, description FROM _steadytext_limit_defaults() ORDER BY ord`);
    assert.deepEqual(
      r.rows.map((row) => ({ ord: row.ord, name: row.name, default: Number(row.value), description: row.description })),
      LIMITS.map((l, i) => ({ ord: i + 1, ...l })),
    );
    const names = await db.pool.query(`SELECT name FROM steadytext_limits()`);
    assert.deepEqual(names.rows.map((row) => row.name), LIMITS.map((l) => l.name), 'steadytext_limits() lists them in table order');
  } finally {
    await db.drop();
  }
});
