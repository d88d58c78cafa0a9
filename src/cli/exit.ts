// Exit codes scripts can rely on (documented in README).
export const exitCodes = {
  ok: 0,
  /** Something failed (a job, a migration, a check). */
  failure: 1,
  /** Bad flags or missing configuration. */
  usage: 2,
  /** The database could not be reached. */
  connection: 3,
  /** A wait ran past its timeout. */
  timeout: 4,
} as const;

export function fail(message: string, code: number): never {
  process.stderr.write(`steadytext: ${message}\n`);
  process.exit(code);
}
