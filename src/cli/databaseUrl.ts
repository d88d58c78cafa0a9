import { findLocalServer } from '../postgres/localServerFiles.ts';
import { resolveOne, SETTINGS } from '../settings.ts';
import { explainConnectionFailures, exitCodes, fail } from './exit.ts';

export interface DatabaseChoice {
  url: string;
  /** Where the URL came from when it was not given: `steadytext up`'s server here. */
  origin?: string;
}

/**
 * --database-url, else $DATABASE_URL, else the embedded PostgreSQL that
 * `steadytext up` runs from this directory (found as `up` finds it: the
 * dataDir and pgPort settings, and the port its server.json names). Exits
 * with a usage error when there is none.
 */
export function databaseFrom(flag: string | undefined): DatabaseChoice {
  const url = resolveOne(SETTINGS.databaseUrl, { flags: { databaseUrl: flag } }).value;
  if (url) return { url };
  const dataDir = resolveOne(SETTINGS.dataDir).value!;
  const local = findLocalServer(dataDir, resolveOne(SETTINGS.pgPort).value!);
  if (local) {
    return {
      url: local.url,
      origin: `the embedded PostgreSQL of \`steadytext up\` in ${dataDir}${local.running ? '' : ', which is not running: start it with `steadytext up`'}`,
    };
  }
  fail('no database: pass --database-url or set DATABASE_URL (or run `steadytext up` here for an embedded one)', exitCodes.usage);
}

/** databaseFrom's URL; a connection failure to `up`'s server then says it was that one. */
export function databaseUrlFrom(flag: string | undefined): string {
  const choice = databaseFrom(flag);
  if (choice.origin) explainConnectionFailures(choice.origin);
  return choice.url;
}
