import { exitCodes, fail } from './exit.ts';

/** --database-url, else $DATABASE_URL; exits with a usage error when neither is set. */
export function databaseUrlFrom(flag: string | undefined): string {
  const url = flag ?? process.env.DATABASE_URL;
  if (!url) {
    fail('no database: pass --database-url or set DATABASE_URL (or run `steadytext up` for an embedded one)', exitCodes.usage);
  }
  return url;
}
