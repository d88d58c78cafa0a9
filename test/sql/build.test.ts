// Where the extension's scripts come from (src/db/schema/sqlBuild.ts): released
// versions are frozen in sql/released/, pinned here by sha256; the current
// version is never committed but built from sql/src/ wherever it is needed
// (`steadytext migrate`, `make -C sql install`, `npm pack`). Each failure
// below says what to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { buildScripts, currentVersion, RELEASED_DIR, releasedScripts, SQL_DIR } from '../../src/db/schema/sqlBuild.ts';
import { plan } from '../../src/db/schema/migrate.ts';

// Released scripts are what users installed: never edited, never rebuilt.
// A new schema change ships as the next version with its upgrade script.
// `npm run release:sql` copies the current version's build into sql/released/
// and prints its lines for this table.
const RELEASED: Record<string, string> = {
  'pg_steadytext--1.0.0.sql': '8d2d5c8f5539c37c06cfc1d04a6d4c8a6f6b827e56ac033fb5c1f84ed7ae1253',
  'pg_steadytext--1.1.0.sql': '409c83853ebc95ec84538c5c99dfb8dd05ceec252f0fc09838689ef895f47e35',
  'pg_steadytext--1.0.0--1.1.0.sql': 'fa05633e2dab75a3206866864d99822544cffdde0a96495a6ec506a8cf265593',
  'pg_steadytext--1.2.0.sql': '53a0c26ea8df02823f5428bf5c0c7c43ee1e0f57e3a1bb0eaecc2799a2829488',
  'pg_steadytext--1.1.0--1.2.0.sql': 'd575478639d86bf2ac2f7effdd88a2361d7b8bd7587b08a4d1c24e9288dfe39c',
  'pg_steadytext--1.3.0.sql': '7c2e787cfd6c98ce37fe34a5d21d4f8ed897e5bbda49aebf215d7a99b560afc1',
  'pg_steadytext--1.2.0--1.3.0.sql': '33f4b2553562de08c2c668c9a2828c741286c7cf67d5b21e6f6b5f9a5d234cc8',
  'pg_steadytext--1.4.0.sql': '677f7d49f98d220a62b3a0de5c7bba763714440de390797918d0a3a0e7f05df4',
  'pg_steadytext--1.3.0--1.4.0.sql': '5d32745f107a23ffd95a51fd498b9baaffd05503f701571fb6e703037eddf6ad',
  'pg_steadytext--1.5.0.sql': 'a68797515a485fad3e4e022990a50ece15ec30d6002bdbcf8804c4f3b70b115b',
  'pg_steadytext--1.4.0--1.5.0.sql': '4ffe3547f9016213a6b8877282446dfe3b5ad9fbbfa05f0b65e1bbebd358e796',
  'pg_steadytext--1.6.0.sql': '9fd4e1bacebc05edd5827c3f9661116d59ec13099142d83a9fe4e1a9840e9a30',
  'pg_steadytext--1.7.0.sql': '846e82246234f0421fd6f0785f923ddd98413927e3bdbf48260b1165edbd40f1',
  'pg_steadytext--1.6.0--1.7.0.sql': 'd35f4782c13bfc5c8783b61ebbf7bece02fb8f78578325774577dd6b5632c377',
  'pg_steadytext--1.5.0--1.6.0.sql': '9dac421b5eb55cfa23930c9071293d73f8f797818e7ecd3420028060e3a65b75',
};

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

test('the scripts of released versions are unchanged', () => {
  for (const [file, sha] of Object.entries(RELEASED)) {
    const got = sha256(path.join(RELEASED_DIR, file));
    assert.equal(got, sha, `sql/released/${file} belongs to a released version: ship the change as the next version instead`);
  }
});

test('every script in sql/released/ is pinned', () => {
  for (const file of releasedScripts()) {
    assert.ok(file in RELEASED, `sql/released/${file} is not pinned: add '${file}': '${sha256(path.join(RELEASED_DIR, file))}' to RELEASED in test/sql/build.test.ts`);
  }
});

test('no versioned script is committed outside sql/released/: the current version is built from sql/src/', () => {
  const stray = readdirSync(SQL_DIR).filter((f) => /^pg_steadytext--.*\.sql$/.test(f));
  assert.deepEqual(stray, [], `git rm ${stray.map((f) => `sql/${f}`).join(' ')}: edit sql/src/ instead (npm run build:sql writes the current version into sql/build/ for a look)`);
});

test('a released current version still builds, byte for byte, from sql/src/', () => {
  const version = currentVersion();
  for (const [file, text] of buildScripts(version)) {
    if (!releasedScripts().includes(file)) continue; // not released yet: the build is the script
    assert.equal(text, readFileSync(path.join(RELEASED_DIR, file), 'utf8'),
      `${version} is released and sql/src/ now builds a different ${file}: set the next default_version in sql/pg_steadytext.control and put the change in sql/src/upgrades/${version}--<next>.sql`);
  }
});

test('every released version has an upgrade path to the current one', () => {
  for (const file of releasedScripts()) {
    const m = /^pg_steadytext--([\d.]+)\.sql$/.exec(file);
    if (!m || m[1] === currentVersion()) continue;
    const steps = plan(m[1]);
    assert.ok(steps.length > 0 && steps.at(-1)!.to === currentVersion(), `${m[1]}: ${steps.map((s) => s.file).join(', ')}`);
  }
});
