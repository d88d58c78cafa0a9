import type pg from 'pg';
import { quoteIdent } from '../sqlNames.ts';

/**
 * A worker connection's settings with its search_path pinned to pg_catalog,
 * then the install schema, and nothing else, set in the startup packet
 * (`options: -c search_path=...`), so every connection of the pool has it
 * before its first statement, with no extra round trip. The worker's
 * statements (src/db/) name the schema's tables unqualified, and built-ins
 * too; whatever search_path the role or database sets (a database owner can
 * ALTER DATABASE ... SET search_path = public, pg_catalog), pg_catalog then
 * comes first, so a function or operator planted under a built-in's exact
 * name and argument types never shadows it, and schemas other than the
 * install schema are not searched at all. A more specific overload planted in
 * the install schema itself could still win overload resolution over a
 * polymorphic or cast-needing built-in: the statements therefore call those
 * schema-qualified (pg_catalog.make_interval, pg_catalog.power,
 * pg_catalog.unnest) or with argument types that match a built-in exactly.
 * Options the user already gives (in the URL's `options`, the config or
 * PGOPTIONS) are kept; the pin comes last, so it wins.
 *
 * Every worker statement also runs under `lock_timeout` (WORKER_LOCK_TIMEOUT,
 * placed before the user's options, which may change it): no worker
 * statement waits on a lock a session holds without a bound. The queue
 * statements pass locked rows over (SKIP LOCKED) and come back for them; a
 * wait that still runs out (lock_not_available, 55P03) counts as transient
 * (withRetries) and the statement is tried again later.
 */
export const WORKER_LOCK_TIMEOUT = '5s';

export function withPinnedSearchPath(config: pg.ClientConfig, schema: string, env: NodeJS.ProcessEnv = process.env): pg.ClientConfig {
  // The server splits `options` at spaces; a backslash escapes the next character.
  const value = `pg_catalog,${quoteIdent(schema)}`.replace(/\\/g, '\\\\').replace(/ /g, '\\ ');
  const pin = `-c search_path=${value}`;
  let base = config;
  let given = config.options ?? env.PGOPTIONS;
  if (config.connectionString) {
    // pg lets a connection string's own options replace config.options: move them over.
    const url = new URL(config.connectionString);
    const fromUrl = url.searchParams.get('options');
    if (fromUrl !== null) {
      given = fromUrl;
      url.searchParams.delete('options');
      base = { ...config, connectionString: url.toString() };
    }
  }
  const bound = `-c lock_timeout=${WORKER_LOCK_TIMEOUT}`;
  return { ...base, options: [bound, given, pin].filter(Boolean).join(' ') };
}
