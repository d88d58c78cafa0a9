// Exit codes scripts can rely on (documented in docs/cli.md).
import { printable } from './printable.ts';

export const exitCodes = {
  ok: 0,
  /** Something failed (a job, a migration, a check, an SQL error such as a rejected argument). */
  failure: 1,
  /** Bad flags or missing configuration. */
  usage: 2,
  /** The database could not be reached. */
  connection: 3,
  /** A wait ran past its timeout. */
  timeout: 4,
} as const;

/** Prints `steadytext: <message>` on stderr (control characters escaped, src/cli/printable.ts) and exits. */
export function fail(message: string, code: number): never {
  process.stderr.write(`steadytext: ${printable(message, { lines: true })}\n`);
  process.exit(code);
}

/** What the database was, when the user did not name it; failWith adds it to "cannot connect". */
let connectionOrigin: string | undefined;

export function explainConnectionFailures(origin: string): void {
  connectionOrigin = origin;
}

interface PgErrorLike {
  code?: string;
  message: string;
  detail?: string;
  hint?: string;
}

const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/** True for errors that mean "the database could not be reached" (not "it said no"). */
export function isConnectionError(err: unknown): boolean {
  const code = (err as PgErrorLike | undefined)?.code;
  if (!code) return /Connection terminated|timeout expired/i.test(String((err as Error)?.message));
  return (
    CONNECTION_ERRNOS.has(code) ||
    code.startsWith('08') || // connection_exception
    code.startsWith('28') || // invalid authorization (bad password, no pg_hba entry)
    code === '3D000' || // database does not exist
    code === '57P03' // cannot connect now (starting up)
  );
}

/** True when the error says pg_steadytext's functions or tables are not there. */
export function isNotInstalledError(err: unknown): boolean {
  const e = err as PgErrorLike | undefined;
  return (e?.code === '42883' || e?.code === '42P01') && /steadytext/.test(e.message);
}

/**
 * Prints an error the way every command does and exits: code 3 when the
 * database could not be reached, else 1 with PostgreSQL's message (plus its
 * DETAIL/HINT and SQLSTATE) and, when pg_steadytext is missing, what to run.
 */
export function failWith(err: unknown, context?: string): never {
  const e = err as PgErrorLike;
  const prefix = context ? `${context}: ` : '';
  if (isConnectionError(err)) {
    fail(`${prefix}cannot connect to the database${connectionOrigin ? ` (${connectionOrigin})` : ''}: ${e.message}`, exitCodes.connection);
  }
  if (isNotInstalledError(err)) {
    fail(
      `${prefix}pg_steadytext is not installed in this database (${e.message}): run \`steadytext migrate\` or CREATE EXTENSION pg_steadytext`,
      exitCodes.failure,
    );
  }
  let text = `${prefix}${e.message}`;
  if (e.code && /^[0-9A-Z]{5}$/.test(e.code)) text += ` (SQLSTATE ${e.code})`;
  if (e.detail) text += `\n  DETAIL: ${e.detail}`;
  if (e.hint) text += `\n  HINT: ${e.hint}`;
  fail(text, exitCodes.failure);
}
