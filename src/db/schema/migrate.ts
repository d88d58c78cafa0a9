// `steadytext migrate`: applies the extension's own versioned scripts to any
// database, for servers where extension files cannot be copied. The scripts
// are the ones `CREATE EXTENSION pg_steadytext` runs: the released ones from
// sql/released/ and the current version's, built in memory from sql/src/
// (src/db/schema/sqlBuild.ts), so a checkout never runs a stale build.
import type pg from 'pg';
import { inSchema, quoteIdent } from '../../sqlNames.ts';
import type { Queryable } from '../queryable.ts';
import { currentVersion, extensionScript, extensionScriptNames } from './sqlBuild.ts';

export { currentVersion, SQL_DIR } from './sqlBuild.ts';

interface Step { from: string | null; to: string; file: string }

/** Script files: pg_steadytext--X.sql (full) and pg_steadytext--X--Y.sql (upgrade). */
function scripts(): Step[] {
  return extensionScriptNames()
    .map((f) => /^pg_steadytext--([\d.]+)(?:--([\d.]+))?\.sql$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => (m[2] ? { from: m[1], to: m[2], file: m[0] } : { from: null, to: m[1], file: m[0] }));
}

/** The scripts that take a database from `installed` (null: nothing) to `target`. */
export function plan(installed: string | null, target = currentVersion()): Step[] {
  const all = scripts();
  if (installed === target) return [];
  if (installed === null) {
    const full = all.find((s) => s.from === null && s.to === target);
    if (full) return [full];
    throw new Error(`no install script for version ${target}`);
  }
  const steps: Step[] = [];
  let at = installed;
  while (at !== target) {
    const next = all.find((s) => s.from === at);
    if (!next) throw new Error(`no upgrade path from ${at} to ${target}`);
    steps.push(next);
    at = next.to;
  }
  return steps;
}

/** A script's text as `migrate` runs it: the extension-only guard dropped, @extschema@ bound. */
export function scriptText(file: string, schema: string): string {
  return extensionScript(file)
    .split('\n')
    .filter((line) => !line.startsWith('\\echo') && !line.startsWith('\\quit'))
    .join('\n')
    .replaceAll('@extschema@', quoteIdent(schema));
}

export interface MigrateResult {
  from: string | null;
  to: string;
  applied: string[];
  viaExtension: boolean;
}

const LOCK_KEY = 0x5354_4558; // 'STEX': one migrator at a time

/**
 * Brings the database to the current version. Idempotent: a second run applies
 * nothing. If pg_steadytext is installed as an extension, upgrades go through
 * ALTER EXTENSION instead.
 */
export async function migrate(
  client: pg.ClientBase,
  opts: { schema?: string; dryRun?: boolean; log?: (sql: string) => void; target?: string } = {},
): Promise<MigrateResult> {
  const schema = opts.schema ?? 'public';
  // target: the version to reach (default: this package's); older versions
  // serve the upgrade tests, which start from a released install.
  const target = opts.target ?? currentVersion();
  await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
  try {
    const ext = await client.query<{ extversion: string }>(
      `SELECT extversion FROM pg_extension WHERE extname = 'pg_steadytext'`,
    );
    if (ext.rows.length > 0) {
      const from = ext.rows[0].extversion;
      if (from !== target && !opts.dryRun) await client.query(`ALTER EXTENSION pg_steadytext UPDATE TO '${target}'`);
      return { from, to: target, applied: from === target ? [] : [`ALTER EXTENSION pg_steadytext UPDATE TO '${target}'`], viaExtension: true };
    }
    const installed = await installedVersion(client, schema);
    const steps = plan(installed, target);
    for (const step of steps) {
      const sql = scriptText(step.file, schema);
      opts.log?.(`-- ${step.file}\n${sql}`);
      if (opts.dryRun) continue;
      await client.query('BEGIN');
      try {
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
        await client.query(`SET LOCAL search_path = ${quoteIdent(schema)}, pg_catalog`);
        await client.query(sql);
        await client.query(
          `INSERT INTO ${inSchema(schema)}steadytext_migrations (version, script) VALUES ($1, $2)`,
          [step.to, step.file],
        );
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
    }
    return { from: installed, to: target, applied: steps.map((s) => s.file), viaExtension: false };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]);
  }
}

/** Version recorded by `migrate` in the schema, or null when not installed. */
export async function installedVersion(client: Queryable, schema = 'public'): Promise<string | null> {
  const exists = await client.query(`SELECT to_regclass($1) AS t`, [`${inSchema(schema)}steadytext_migrations`]);
  if (exists.rows[0].t === null) return null;
  const r = await client.query<{ version: string }>(
    `SELECT version FROM ${inSchema(schema)}steadytext_migrations ORDER BY applied_at DESC, version DESC LIMIT 1`,
  );
  return r.rows[0]?.version ?? null;
}
