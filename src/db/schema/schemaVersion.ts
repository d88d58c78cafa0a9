// Which pg_steadytext version the database holds, and whether this package
// can work on it. A worker checks before it touches the queue, so a schema
// older or newer than the code says what to run instead of failing later on
// a missing column; `steadytext doctor` reports the same.
import type { Queryable } from '../queryable.ts';
import { currentVersion, installedVersion } from './migrate.ts';

export interface InstalledSchema {
  version: string;
  schema: string;
  /** 'extension': CREATE EXTENSION (pg_extension.extversion); 'migrate': the steadytext_migrations record. */
  how: 'extension' | 'migrate';
}

/**
 * The installed version: pg_extension's when installed as an extension, else
 * the newest steadytext_migrations record in the first schema of the
 * search_path that has one (the one unqualified names resolve to). Null when
 * neither exists.
 */
export async function installedSchema(db: Queryable): Promise<InstalledSchema | null> {
  const ext = await db.query<{ version: string; schema: string }>(
    `SELECT e.extversion AS version, n.nspname AS schema
     FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_steadytext'`,
  );
  if (ext.rows.length > 0) return { ...ext.rows[0], how: 'extension' };
  const at = await db.query<{ schema: string }>(
    `SELECT n.nspname AS schema FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relname = 'steadytext_migrations' AND c.relkind = 'r'
     ORDER BY pg_catalog.array_position(pg_catalog.current_schemas(false), n.nspname::text) NULLS LAST, n.nspname
     LIMIT 1`,
  );
  if (at.rows.length === 0) return null;
  const schema = at.rows[0].schema;
  const version = await installedVersion(db, schema);
  return version === null ? null : { version, schema, how: 'migrate' };
}

/** What brings the database to `expected` (or says this package is the older side). */
export function upgradeAdvice(installed: InstalledSchema, expected = currentVersion()): string {
  if (compareVersions(installed.version, expected) > 0) {
    return `the database is newer than this package: upgrade pg-steadytext to ${installed.version} or newer on this host`;
  }
  return installed.how === 'extension'
    ? `run \`steadytext migrate\` (or ALTER EXTENSION pg_steadytext UPDATE TO '${expected}';)`
    : 'run `steadytext migrate`';
}

/** The database holds no pg_steadytext, or a version other than this package's. */
export class SchemaVersionError extends Error {
  readonly expected: string;
  readonly installed: InstalledSchema | null;
  constructor(expected: string, installed: InstalledSchema | null) {
    super(
      installed === null
        ? `pg_steadytext is not installed in this database (this package needs schema ${expected}): run \`steadytext migrate\``
        : `pg_steadytext schema ${installed.version} is installed (${installed.how === 'extension' ? 'as an extension' : 'by steadytext migrate'} in schema ${installed.schema}), ` +
            `but this package needs ${expected}: ${upgradeAdvice(installed, expected)}`,
    );
    this.name = 'SchemaVersionError';
    this.expected = expected;
    this.installed = installed;
  }
}

/** Throws SchemaVersionError unless the database holds exactly `expected`. */
export async function assertSchemaVersion(db: Queryable, expected = currentVersion()): Promise<InstalledSchema> {
  const installed = await installedSchema(db);
  if (installed === null || installed.version !== expected) throw new SchemaVersionError(expected, installed);
  return installed;
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

