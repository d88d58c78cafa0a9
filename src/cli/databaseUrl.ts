import { resolveOne, SETTINGS } from '../settings.ts';
import { exitCodes, fail } from './exit.ts';

/** --database-url, else $DATABASE_URL; exits with a usage error when neither is set. */
export function databaseUrlFrom(flag: string | undefined): string {
  const url = resolveOne(SETTINGS.databaseUrl, { flags: { databaseUrl: flag } }).value;
  if (!url) {
    fail('no database: pass --database-url or set DATABASE_URL (or run `steadytext up` for an embedded one)', exitCodes.usage);
  }
  return url;
}
