// The extension's scripts: where each comes from, and `npm run build:sql`.
//
//   sql/src/NN-topic.sql              authored: the schema by topic, in file-name order
//   sql/src/upgrades/A--B.sql         authored: the hand-written part of the upgrade A -> B
//   sql/released/pg_steadytext--*.sql the scripts of released versions as built at
//                                     their release (`npm run release:sql` copies
//                                     them here), pinned by sha256 in
//                                     test/sql/build.test.ts; never rebuilt
//
// The current version (default_version in sql/pg_steadytext.control) is not
// committed: it is built from the sources wherever it is needed.
//   pg_steadytext--B.sql              every source file, in order
//   pg_steadytext--A--B.sql           the hand-written part, then every source
//                                     file not marked @install-only
// `steadytext migrate` builds it in memory (extensionScript()); `npm run
// build:sql` writes it into sql/build/ (git-ignored) for `make -C sql install`,
// which runs it, and for `npm pack`, whose prepack step runs it.
//
// Source files other than the @install-only ones (tables, indexes, policies)
// hold only repeatable statements (CREATE OR REPLACE, GRANT after REVOKE), so
// running them again at the end of an upgrade brings every function, trigger
// and privilege to exactly what a fresh install has.
//
// A source line `-- @job-types <fragment>` is followed, in the build, by what
// the job-type catalog (src/jobTypes.ts) gives for it (src/db/schema/jobTypesSql.ts);
// a line `-- @limits <fragment>` by what the limits table (src/limits.ts)
// gives (src/db/schema/limitsSql.ts).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expandJobTypes } from './jobTypesSql.ts';
import { expandLimits } from './limitsSql.ts';

export const SQL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../sql');
export const RELEASED_DIR = path.join(SQL_DIR, 'released');
export const BUILD_DIR = path.join(SQL_DIR, 'build');
const SRC_DIR = path.join(SQL_DIR, 'src');
const UPGRADES_DIR = path.join(SRC_DIR, 'upgrades');
const INSTALL_ONLY = /^-- @install-only\b/m;
const SCRIPT = /^pg_steadytext--[\d.]+(?:--[\d.]+)?\.sql$/;

/** default_version from pg_steadytext.control. */
export function currentVersion(): string {
  const control = readFileSync(path.join(SQL_DIR, 'pg_steadytext.control'), 'utf8');
  const m = /^default_version\s*=\s*'([^']+)'/m.exec(control);
  if (!m) throw new Error('pg_steadytext.control has no default_version');
  return m[1];
}

interface Source { name: string; text: string; installOnly: boolean }

function sources(): Source[] {
  return readdirSync(SRC_DIR)
    .filter((f) => /^\d\d-[a-z0-9-]+\.sql$/.test(f))
    .sort()
    .map((name) => {
      const file = `sql/src/${name}`;
      const text = expandLimits(expandJobTypes(readFileSync(path.join(SRC_DIR, name), 'utf8'), file), file);
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

/** The file names in sql/released/, sorted. */
export function releasedScripts(): string[] {
  return existsSync(RELEASED_DIR) ? readdirSync(RELEASED_DIR).filter((f) => SCRIPT.test(f)).sort() : [];
}

/**
 * Every script `CREATE EXTENSION`, `ALTER EXTENSION ... UPDATE` and `steadytext
 * migrate` may run, file name -> text: the released ones, then the current
 * version's, built from sql/src/ (a released copy of the current version wins;
 * test/sql/build.test.ts holds the two equal).
 */
export function extensionScripts(): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of releasedScripts()) out.set(f, readFileSync(path.join(RELEASED_DIR, f), 'utf8'));
  for (const [f, text] of buildScripts()) if (!out.has(f)) out.set(f, text);
  return out;
}

/** The names of extensionScripts(), without reading the released ones. */
export function extensionScriptNames(): string[] {
  return [...new Set([...releasedScripts(), ...buildScripts().keys()])];
}

/** One script of extensionScripts(), reading only what it needs. */
export function extensionScript(file: string): string {
  if (releasedScripts().includes(file)) return readFileSync(path.join(RELEASED_DIR, file), 'utf8');
  const built = buildScripts().get(file);
  if (built === undefined) throw new Error(`no script ${file}: neither in sql/released/ nor built from sql/src/`);
  return built;
}

function writeAtomically(file: string, text: string): void {
  // another build (a parallel make, a test) may be reading or writing the same file
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** `npm run build:sql`: the current version's scripts into sql/build/, and nothing else there. */
function build(): void {
  const built = buildScripts();
  mkdirSync(BUILD_DIR, { recursive: true });
  for (const f of readdirSync(BUILD_DIR)) if (SCRIPT.test(f) && !built.has(f)) rmSync(path.join(BUILD_DIR, f));
  for (const [f, text] of built) {
    writeAtomically(path.join(BUILD_DIR, f), text);
    // stderr: `npm pack --json` runs this (prepack) and its stdout must stay JSON
    console.error(`wrote sql/build/${f}`);
  }
}

/**
 * `npm run release:sql`: freezes the current version. Its built scripts are
 * copied into sql/released/ and their pins printed for test/sql/build.test.ts.
 */
function release(): void {
  const version = currentVersion();
  mkdirSync(RELEASED_DIR, { recursive: true });
  const pins: string[] = [];
  for (const [f, text] of buildScripts(version)) {
    const p = path.join(RELEASED_DIR, f);
    if (existsSync(p) && readFileSync(p, 'utf8') !== text) {
      throw new Error(`sql/released/${f} is already released and sql/src/ now builds something else: bump default_version in sql/pg_steadytext.control instead`);
    }
    writeAtomically(p, text);
    pins.push(`  '${f}': '${createHash('sha256').update(text).digest('hex')}',`);
  }
  console.log(`released ${version} into sql/released/. Next:
  1. add these pins to RELEASED in test/sql/build.test.ts:
${pins.join('\n')}
  2. commit sql/released/ and the pins; tag and publish the release;
  3. to start the next version: set default_version in sql/pg_steadytext.control
     and package.json's version, write sql/src/upgrades/${version}--<next>.sql, and add
     '${version}' to RELEASED_VERSIONS in test/sql/upgrade.test.ts.`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    if (process.argv.includes('--release')) release();
    else build();
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  }
}
