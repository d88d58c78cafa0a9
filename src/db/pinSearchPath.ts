import { quoteIdent } from './migrate.ts';
import type { Queryable } from './queryable.ts';

/**
 * Pins a worker connection's search_path to pg_catalog, then the install
 * schema, and nothing else. The worker's statements (src/db/) name the
 * schema's tables unqualified, and built-ins too; whatever search_path the
 * role or database sets (a database owner can ALTER DATABASE ... SET
 * search_path = public, pg_catalog), pg_catalog then comes first, so a
 * function or operator planted under a built-in's exact name and argument
 * types never shadows it, and schemas other than the install schema are not
 * searched at all. A more specific overload planted in the install schema
 * itself could still win overload resolution over a polymorphic or cast-
 * needing built-in: the statements therefore call those schema-qualified
 * (pg_catalog.make_interval, pg_catalog.power, pg_catalog.unnest) or with
 * argument types that match a built-in exactly.
 */
export async function pinSearchPath(db: Queryable, schema: string): Promise<void> {
  await db.query(`SET search_path TO pg_catalog, ${quoteIdent(schema)}`);
}
