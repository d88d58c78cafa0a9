// `steadytext up` when its PostgreSQL port is taken: a port the user named is
// theirs to change (one line naming the setting, not PostgreSQL's log); the
// default port is replaced by a free one, and `up` says so; a second `up` of
// the same data directory says the first one is running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startLocalServer } from '../../src/postgres/localServer.ts';
import { startUp } from './fixtures/up.ts';

function scratch(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'steadytext-busy-port-'));
  chmodSync(dir, 0o755); // as root, PostgreSQL runs as the `postgres` user and must reach its data
  return dir;
}

/** Something else listening on 127.0.0.1 (another PostgreSQL, say): its port. */
async function occupy(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as import('node:net').AddressInfo).port, server };
}

const env = { DATABASE_URL: '', STEADYTEXT_PG_PORT: '' };

test('steadytext up --port <a busy port>: one line that names the setting, no PostgreSQL log, exit 1', { timeout: 120_000 }, async () => {
  const dir = scratch();
  const busy = await occupy();
  const up = startUp(['--no-worker', '--port', String(busy.port), '--data-dir', path.join(dir, 'data')], env);
  try {
    const url = await up.ready;
    const code = url === null ? await up.exited : await up.stop();
    const out = up.output();
    assert.equal(url, null, out);
    assert.equal(code, 1, out);
    assert.match(
      out,
      new RegExp(`^steadytext: could not start embedded PostgreSQL: port ${busy.port} is in use \\(another PostgreSQL, or \`steadytext up\` in another directory\\): choose another with --port <n> or STEADYTEXT_PG_PORT=<n> \\(this one came from --port\\)$`, 'm'),
    );
    assert.doesNotMatch(out, /LOG:|FATAL:|HINT:/, 'no raw server log');
  } finally {
    await up.stop();
    busy.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the default port busy: the embedded server takes a free one and says so', { timeout: 120_000 }, async () => {
  const dir = scratch();
  const busy = await occupy();
  // As `up` calls it when the port is its default (no portSource).
  const server = await startLocalServer({ dataDir: path.join(dir, 'data'), port: busy.port });
  try {
    assert.notEqual(server.port, busy.port);
    assert.match(server.portNote ?? '', new RegExp(`^port ${busy.port} is in use .*; PostgreSQL listens on ${server.port} instead \\(choose one with --port <n> or STEADYTEXT_PG_PORT=<n>\\)$`));
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    assert.equal((await c.query(`SELECT current_setting('port') AS p`)).rows[0].p, String(server.port));
    await c.end();
  } finally {
    await server.stop();
    busy.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a second steadytext up of the same data directory says the first one runs it', { timeout: 120_000 }, async () => {
  const dir = scratch();
  const first = await startLocalServer({ dataDir: path.join(dir, 'data'), port: (await occupy().then(({ port, server }) => (server.close(), port))) });
  const up = startUp(['--no-worker', '--data-dir', path.join(dir, 'data')], env);
  try {
    const url = await up.ready;
    const code = url === null ? await up.exited : await up.stop();
    const out = up.output();
    assert.equal(code, 1, out);
    assert.match(out, new RegExp(`\`steadytext up\` \\(process ${process.pid}\\) is already running the PostgreSQL of ${path.join(dir, 'data')}, on port ${first.port}`));
    assert.doesNotMatch(out, /LOG:|FATAL:|lock file/);
  } finally {
    await up.stop();
    await first.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
