// Every ```sql block of the spec runs as written against a database whose
// schema `steadytext migrate` installed. The runner, its fixtures and its
// documented exceptions are in ./specExamples.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { runSpecExamples, SPEC, SPEC_MISSING, splitStatements } from './specExamples.ts';

let db: TestDatabase;
let c: pg.Client;
before(async () => {
  db = await createTestDatabase();
  c = await db.connect();
});
after(async () => {
  await db?.drop();
});

test('every SQL example of the spec runs as written', async (t) => {
  if (!SPEC || !existsSync(SPEC)) {
    t.skip(SPEC_MISSING);
    return;
  }
  await runSpecExamples(c, (line) => t.diagnostic(line));
});

test('the statement splitter keeps quoted, dollar-quoted and commented semicolons', () => {
  assert.deepEqual(
    splitStatements(`SELECT 'a;b'; -- c;d\nSELECT $$x;y$$; /* e; /* f; */ g; */ SELECT "q;"`),
    [`SELECT 'a;b'`, `-- c;d\nSELECT $$x;y$$`, `/* e; /* f; */ g; */ SELECT "q;"`],
  );
});
