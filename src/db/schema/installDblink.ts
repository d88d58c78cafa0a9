import type { Queryable } from '../queryable.ts';

export interface DblinkInstall {
  /** The dblink version installed now (before this call or by it); null when it is not. */
  version: string | null;
  /** Why not (not on the server, not permitted), for the caller to print. */
  note?: string;
}

/**
 * CREATE EXTENSION IF NOT EXISTS dblink, where the server has it and this role
 * may: the synchronous functions (steadytext_generate ...) and waiting on a
 * request in the transaction that enqueued it hand the request to a worker
 * through dblink. Run before steadytext_setup_handoff(), which takes dblink
 * away from PUBLIC. Changes nothing when dblink cannot be installed, and says why.
 */
export async function installDblink(client: Queryable): Promise<DblinkInstall> {
  const why = 'the synchronous functions (steadytext_generate, ...) and waiting on a request in the transaction that enqueued it need it';
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS dblink');
  } catch (err) {
    const e = err as { code?: string; message: string };
    const available = await client.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'dblink'`).then((r) => (r.rowCount ?? 0) > 0, () => false);
    return {
      version: null,
      note: available
        ? `dblink was not installed (${e.message}); ${why}: have an operator run CREATE EXTENSION dblink; then SELECT steadytext_setup_handoff();`
        : `dblink is not available on this server; ${why}: install your distribution's postgresql-contrib package, then run \`steadytext migrate\` again`,
    };
  }
  const r = await client.query<{ v: string }>(`SELECT extversion AS v FROM pg_extension WHERE extname = 'dblink'`);
  return { version: r.rows[0]?.v ?? null };
}
