// Shared by the attack tests in test/security: login roles made per run
// (unique names, dropped at the end) and connections as them.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { serverUrl } from '../helpers/db.ts';

export const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;

export interface Logins {
  /** name -> role name (unique per run) */
  names: Record<string, string>;
  /** A new connection to `url`'s database as login `who`. */
  as(who: string, url: string): Promise<pg.Client>;
  urlAs(who: string, url: string): string;
  /** Closes every connection and drops the roles (and what they own). */
  drop(): Promise<void>;
}

export async function superuser<T>(fn: (c: pg.Client) => Promise<T>, url = serverUrl()): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * Creates LOGIN roles: spec maps a short name to the CREATE ROLE options
 * after LOGIN PASSWORD (e.g. 'IN ROLE steadytext_user').
 */
export async function makeLogins(prefix: string, spec: Record<string, string>): Promise<Logins> {
  const suffix = randomBytes(4).toString('hex');
  const names = Object.fromEntries(Object.keys(spec).map((k) => [k, `${prefix}_${k}_${suffix}`]));
  await superuser(async (c) => {
    for (const [k, opts] of Object.entries(spec)) {
      await c.query(`CREATE ROLE ${names[k]} LOGIN PASSWORD '${PASSWORD}' ${opts}`);
    }
  });
  const clients: pg.Client[] = [];
  const urlAs = (who: string, url: string) => {
    const u = new URL(url);
    u.username = names[who] ?? who;
    u.password = PASSWORD;
    return u.toString();
  };
  return {
    names,
    urlAs,
    async as(who, url) {
      const c = new pg.Client({ connectionString: urlAs(who, url) });
      c.on('error', () => {});
      await c.connect();
      clients.push(c);
      return c;
    },
    async drop() {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
      await superuser(async (c) => {
        for (const r of Object.values(names)) {
          await c.query(`DROP ROLE IF EXISTS ${r}`).catch(() => {});
        }
      });
    },
  };
}

/** The first row of a query. */
export async function one<T = any>(c: pg.ClientBase | pg.Pool, sql: string, params: unknown[] = []): Promise<T> {
  return (await c.query(sql, params)).rows[0] as T;
}

/** The SQLSTATE `sql` fails with (undefined when it succeeds). */
export async function sqlstate(c: pg.ClientBase | pg.Pool, sql: string, params: unknown[] = []): Promise<string | undefined> {
  try {
    await c.query(sql, params);
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? 'no-code';
  }
}
