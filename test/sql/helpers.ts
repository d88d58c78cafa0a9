// Shared by the test/sql files: error assertions, a stand-in worker that
// drives rows through the same UPDATEs a real worker makes, and the extension
// files' install into a test server.
import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import type { Queryable } from '../../src/db/queryable.ts';
import { extensionScripts, SQL_DIR } from '../../src/db/schema/sqlBuild.ts';


/**
 * Writes the control file and every script (the released ones and the current
 * version's build) into a server's SHAREDIR/extension, as `make -C sql install`
 * does; test/sql/extension.test.ts holds make to the same files.
 */
export function installExtensionFiles(sharedir: string): void {
  const dir = path.join(sharedir, 'extension');
  const files = new Map(extensionScripts());
  files.set('pg_steadytext.control', readFileSync(path.join(SQL_DIR, 'pg_steadytext.control'), 'utf8'));
  for (const [f, text] of files) {
    // write then rename: another test run may be reading the same directory
    const tmp = path.join(dir, `.${f}.${process.pid}.tmp`);
    writeFileSync(tmp, text);
    renameSync(tmp, path.join(dir, f));
  }
}

/** Asserts that `sql` fails with `code` and a message containing every one of `parts`. */
export async function assertSqlError(db: Queryable, sql: string, params: unknown[], code: string, ...parts: string[]): Promise<Error> {
  let err: (Error & { code?: string }) | undefined;
  try {
    await db.query(sql, params);
  } catch (e) {
    err = e as Error & { code?: string };
  }
  assert.ok(err, `expected ${sql} to fail with ${code}`);
  assert.equal(err.code, code, `SQLSTATE of "${err.message}"`);
  for (const p of parts) assert.ok(err.message.includes(p), `"${err.message}" should mention ${p}`);
  return err;
}

export async function queueCount(db: Queryable): Promise<number> {
  const r = await db.query(`SELECT count(*)::int AS n FROM steadytext_queue`);
  return r.rows[0].n;
}

/** Claims a pending row like a worker (status processing, started_at, worker_id, attempt + 1). */
export async function claim(db: Queryable, requestId: string, workerId = 'test-worker'): Promise<void> {
  const r = await db.query(
    `UPDATE steadytext_queue SET status = 'processing', started_at = now(), worker_id = $2, attempt = attempt + 1
     WHERE request_id = $1 AND status = 'pending'`,
    [requestId, workerId],
  );
  assert.equal(r.rowCount, 1, `claim ${requestId}`);
}

/** Completes a claimed (or pending) row like a worker. */
export async function complete(db: Queryable, requestId: string, result: string): Promise<void> {
  const r = await db.query(
    `UPDATE steadytext_queue SET status = 'completed', result = $2, error = NULL,
            started_at = coalesce(started_at, now())
     WHERE request_id = $1 AND status IN ('pending', 'processing')`,
    [requestId, result],
  );
  assert.equal(r.rowCount, 1, `complete ${requestId}`);
}

export async function fail(db: Queryable, requestId: string, error: string): Promise<void> {
  const r = await db.query(
    `UPDATE steadytext_queue SET status = 'failed', error = $2, started_at = coalesce(started_at, now())
     WHERE request_id = $1 AND status IN ('pending', 'processing')`,
    [requestId, error],
  );
  assert.equal(r.rowCount, 1, `fail ${requestId}`);
}

/** Collects notifications on `channel` from a dedicated LISTEN connection. */
export async function listen(client: pg.Client, channel: string): Promise<{ payloads: string[]; waitFor(n: number, ms?: number): Promise<string[]> }> {
  const payloads: string[] = [];
  client.on('notification', (m) => {
    if (m.channel === channel) payloads.push(m.payload ?? '');
  });
  await client.query(`LISTEN ${channel}`);
  return {
    payloads,
    async waitFor(n: number, ms = 3000) {
      const end = Date.now() + ms;
      while (payloads.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      // a little longer, to catch duplicates that should not be there
      await new Promise((r) => setTimeout(r, 100));
      return payloads;
    },
  };
}

/** A postgres:// URL as the libpq key=value string dblink takes. */
export function libpqConnstr(url: string): string {
  const u = new URL(url);
  const q = (v: string) => `'${v.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  return [
    `host=${q(u.hostname)}`, `port=${q(u.port || '5432')}`, `dbname=${q(decodeURIComponent(u.pathname.slice(1)))}`,
    `user=${q(decodeURIComponent(u.username))}`, `password=${q(decodeURIComponent(u.password))}`,
  ].join(' ');
}

/**
 * Installs dblink and sets up the request-response hand-off's login
 * (steadytext_setup_handoff(), as `steadytext up` and `steadytext migrate` do),
 * pointing it at `url`'s host and port (steadytext_config 'dblink_connstr',
 * without user or password).
 */
export async function enableHandoff(db: Queryable, url: string): Promise<void> {
  await db.query(`CREATE EXTENSION IF NOT EXISTS dblink`);
  const u = new URL(url);
  await db.query(
    `INSERT INTO steadytext_config (key, value) VALUES ('dblink_connstr', to_jsonb($1::text))
     ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    [`host=${u.hostname} port=${u.port || '5432'} dbname=${decodeURIComponent(u.pathname.slice(1))}`],
  );
  await db.query(`SELECT steadytext_setup_handoff()`);
}
