// The versioned scripts in sql/ are built from sql/src/ by `npm run build:sql`
// and committed; this fails when someone edited a source and not the build
// (or the build by hand).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { staleScripts } from '../../src/db/sqlBuild.ts';
import { SQL_DIR } from '../../src/db/migrate.ts';

test('sql/pg_steadytext--*.sql of the current version equal what `npm run build:sql` builds from sql/src/', () => {
  assert.deepEqual(staleScripts(), [], 'run `npm run build:sql` and commit the result');
});

// Released scripts are what users installed: never edited, never rebuilt.
// A new schema change ships as the next version with its upgrade script.
const RELEASED: Record<string, string> = {
  'pg_steadytext--1.0.0.sql': '8d2d5c8f5539c37c06cfc1d04a6d4c8a6f6b827e56ac033fb5c1f84ed7ae1253',
  'pg_steadytext--1.1.0.sql': '409c83853ebc95ec84538c5c99dfb8dd05ceec252f0fc09838689ef895f47e35',
  'pg_steadytext--1.0.0--1.1.0.sql': 'fa05633e2dab75a3206866864d99822544cffdde0a96495a6ec506a8cf265593',
  'pg_steadytext--1.2.0.sql': '53a0c26ea8df02823f5428bf5c0c7c43ee1e0f57e3a1bb0eaecc2799a2829488',
  'pg_steadytext--1.1.0--1.2.0.sql': 'd575478639d86bf2ac2f7effdd88a2361d7b8bd7587b08a4d1c24e9288dfe39c',
  'pg_steadytext--1.3.0.sql': '7c2e787cfd6c98ce37fe34a5d21d4f8ed897e5bbda49aebf215d7a99b560afc1',
  'pg_steadytext--1.2.0--1.3.0.sql': '33f4b2553562de08c2c668c9a2828c741286c7cf67d5b21e6f6b5f9a5d234cc8',
};

test('the scripts of released versions are unchanged', () => {
  for (const [file, sha] of Object.entries(RELEASED)) {
    const got = createHash('sha256').update(readFileSync(path.join(SQL_DIR, file))).digest('hex');
    assert.equal(got, sha, `sql/${file} belongs to a released version: ship the change as the next version instead`);
  }
});
