// `npm run build:sql`: builds the current version's extension scripts from the
// authored sources, the way pgmq keeps its SQL.
//
//   sql/src/NN-topic.sql            the schema, by topic, in file-name order
//   sql/src/upgrades/A--B.sql       the hand-written part of the upgrade A -> B
//
// Output (committed; test/sql/build.test.ts fails when it is stale):
//   sql/pg_steadytext--B.sql        every source file, in order
//   sql/pg_steadytext--A--B.sql     the hand-written part, then every source
//                                   file not marked @install-only
//
// Source files other than the @install-only ones (tables, indexes, policies)
// hold only repeatable statements (CREATE OR REPLACE, GRANT after REVOKE), so
// running them again at the end of an upgrade brings every function, trigger
// and privilege to exactly what a fresh install has. Scripts of older
// versions are released files and are never rebuilt.
//
// A source line `-- @job-types <fragment>` is followed, in the build, by what
// the job-type catalog (src/jobTypes.ts) gives for it (src/db/jobTypesSql.ts).
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SQL_DIR, currentVersion } from './migrate.ts';
import { expandJobTypes } from './jobTypesSql.ts';

const SRC_DIR = path.join(SQL_DIR, 'src');
const UPGRADES_DIR = path.join(SRC_DIR, 'upgrades');
const INSTALL_ONLY = /^-- @install-only\b/m;

interface Source { name: string; text: string; installOnly: boolean }

function sources(): Source[] {
  return readdirSync(SRC_DIR)
    .filter((f) => /^\d\d-[a-z0-9-]+\.sql$/.test(f))
    .sort()
    .map((name) => {
      const text = expandJobTypes(readFileSync(path.join(SRC_DIR, name), 'utf8'), `sql/src/${name}`);
      return { name, text, installOnly: INSTALL_ONLY.test(text) };
    });
}

function section(s: Source): string {
  return `-- ---------------------------------------------------------------------------\n-- sql/src/${s.name}\n-- ---------------------------------------------------------------------------\n${s.text.trimEnd()}\n`;
}

/** The built scripts of the current version: file name -> text. */
export function buildScripts(version = currentVersion()): Map<string, string> {
  const all = sources();
  const out = new Map<string, string>();
  out.set(
    `pg_steadytext--${version}.sql`,
    [
      `-- pg_steadytext ${version}: SteadyText's async AI functions for PostgreSQL.`,
      '-- Built by `npm run build:sql` from sql/src/ (do not edit; edit the sources).',
      '-- Installed by `CREATE EXTENSION pg_steadytext` or by `steadytext migrate`',
      '-- (which binds @extschema@ and drops the guard line below).',
      '\\echo Use "CREATE EXTENSION pg_steadytext" to load this file. \\quit',
      '',
      ...all.map(section),
    ].join('\n'),
  );
  const heads = existsSync(UPGRADES_DIR) ? readdirSync(UPGRADES_DIR) : [];
  for (const head of heads.sort()) {
    const m = /^([\d.]+)--([\d.]+)\.sql$/.exec(head);
    if (!m || m[2] !== version) continue;
    const from = m[1];
    const text = readFileSync(path.join(UPGRADES_DIR, head), 'utf8');
    out.set(
      `pg_steadytext--${from}--${version}.sql`,
      [
        `-- pg_steadytext upgrade ${from} -> ${version}.`,
        '-- Built by `npm run build:sql`: the hand-written part (sql/src/upgrades/',
        `-- ${head}), then every repeatable source file of ${version}.`,
        `\\echo Use "ALTER EXTENSION pg_steadytext UPDATE TO '${version}'" to load this file. \\quit`,
        '',
        `-- ---------------------------------------------------------------------------\n-- sql/src/upgrades/${head}\n-- ---------------------------------------------------------------------------\n${text.trimEnd()}\n`,
        ...all.filter((s) => !s.installOnly).map(section),
      ].join('\n'),
    );
  }
  return out;
}

/** Scripts in sql/ that differ from what the sources build (missing ones too). */
export function staleScripts(): string[] {
  const stale: string[] = [];
  for (const [file, text] of buildScripts()) {
    const p = path.join(SQL_DIR, file);
    if (!existsSync(p) || readFileSync(p, 'utf8') !== text) stale.push(file);
  }
  return stale;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const [file, text] of buildScripts()) {
    writeFileSync(path.join(SQL_DIR, file), text);
    console.log(`wrote sql/${file}`);
  }
}
