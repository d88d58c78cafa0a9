// Each test file gets its own database, cloned from a template that holds the
// installed schema. The server is the one test/run.ts started (embedded
// PostgreSQL) or any server named by TEST_DATABASE_URL.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../src/db/schema/migrate.ts';

export const TEMPLATE_DB = 'steadytext_template';

export function serverUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run the tests with `npm test`');
  return url;
}

export function urlFor(database: string, base = serverUrl()): string {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Creates the template database with the schema installed by `migrate`. */
export async function prepareTemplate(base = serverUrl()): Promise<void> {
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DB}`);
    await admin.query(`CREATE DATABASE ${TEMPLATE_DB}`);
  } finally {
    await admin.end();
  }
  const c = new pg.Client({ connectionString: urlFor(TEMPLATE_DB, base) });
  await c.connect();
  try {
    await migrate(c);
  } finally {
    await c.end();
  }
}

export interface TestDatabase {
  name: string;
  url: string;
  pool: pg.Pool;
  /** A new, separate connection (for LISTEN, or a second session). */
  connect(): Promise<pg.Client>;
  drop(): Promise<void>;
}

/** A fresh database holding the installed schema and nothing else. */
export async function createTestDatabase(opts: { empty?: boolean } = {}): Promise<TestDatabase> {
  const name = `st_test_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    const template = opts.empty ? 'template1' : TEMPLATE_DB;
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
        break;
      } catch (err) {
        // Two files cloning the template at the same instant can collide.
        if (attempt < 20 && /being accessed by other users/.test(String(err))) {
          await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
          continue;
        }
        throw err;
      }
    }
  } finally {
    await admin.end();
  }
  const url = urlFor(name);
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  const clients: pg.Client[] = [];
  return {
    name,
    url,
    pool,
    async connect() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      clients.push(c);
      return c;
    },
    async drop() {
      // pool.end() resolves before its sockets close; DROP ... WITH (FORCE)
      // may then terminate a closing connection, which must not surface as
      // an unhandled 'error' in whatever test runs next.
      pool.on('error', () => {});
      for (const c of clients) c.on('error', () => {});
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
      await pool.end();
      const a = new pg.Client({ connectionString: serverUrl() });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}
