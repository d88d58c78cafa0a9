import type pg from 'pg';
import { inSchema } from '../../sqlNames.ts';
import type { Queryable } from '../queryable.ts';

export interface HandoffSetup {
  /** The hand-off's login role, or null when it could not be set up. */
  login: string | null;
  /** Why not (dblink missing, no CREATEROLE), for the caller to print. */
  note?: string;
}


/**
 * Sets up the request-response hand-off of the schema in `schema`: runs
 * steadytext_setup_handoff() (a least-privilege LOGIN role with a connection
 * limit and a random password kept in the admin-only steadytext_config; dblink
 * no longer executable by PUBLIC). Needs a role that may create roles; without
 * one, says so and changes nothing (an operator runs it later, see
 * docs/security.md).
 */
export async function setupHandoff(client: Queryable, schema = 'public'): Promise<HandoffSetup> {
  const can = await client.query<{ ok: boolean }>(
    `SELECT rolsuper OR rolcreaterole AS ok FROM pg_roles WHERE rolname = current_user`,
  );
  if (!can.rows[0]?.ok) {
    return {
      login: null,
      note: `the hand-off login was not set up: this role may not create roles; have an operator run SELECT ${inSchema(schema)}steadytext_setup_handoff()`,
    };
  }
  try {
    const r = await client.query<{ login: string }>(`SELECT ${inSchema(schema)}steadytext_setup_handoff() AS login`);
    return { login: r.rows[0].login };
  } catch (err) {
    // e.g. a CREATEROLE role without ADMIN on steadytext_handoff (PostgreSQL 16+)
    return {
      login: null,
      note: `the hand-off login was not set up (${(err as Error).message}); have an operator run SELECT ${inSchema(schema)}steadytext_setup_handoff()`,
    };
  }
}
