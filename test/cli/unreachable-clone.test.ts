// As root, with the clone under a directory other users cannot enter (mode
// 700, like /root), the embedded PostgreSQL (run as the `postgres` user) gets
// its data directory and binaries under /var/tmp, keyed by the clone's path,
// and `steadytext up` says where. Nobody's home directory is loosened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { defaultNativeDir, relocatedBase, runtimeRoot, startEmbeddedPostgres } from '../../src/postgres/embeddedPostgres.ts';
import { ROOT } from '../worker/fixtures/queue.ts';
import { freePort } from '../helpers/freePort.ts';

const isRoot = process.getuid?.() === 0;


test('a clone under a mode-700 directory: the server runs from /var/tmp/steadytext-pg-<hash>, data kept across restarts', { skip: !isRoot && 'needs root (PostgreSQL then runs as the postgres user)', timeout: 240_000 }, async () => {
  const home = mkdtempSync(path.join(tmpdir(), 'st-home-')); // mode 700, like /root
  assert.equal(statSync(home).mode & 0o777, 0o700);
  const clone = path.join(home, 'pg-steadytext');
  mkdirSync(clone);
  // The binaries as a clone's node_modules holds them: behind the mode-700 directory.
  const native = path.join(clone, 'native');
  symlinkSync(defaultNativeDir(), native);
  const requested = path.join(clone, '.steadytext', 'pgdata');
  const base = relocatedBase(requested);
  try {
    const start = async () => startEmbeddedPostgres({ dataDir: requested, port: await freePort(), nativeDir: native });
    let server = await start();
    try {
      assert.equal(path.dirname(server.dataDir), base);
      assert.ok(base.startsWith(path.join(runtimeRoot(), 'steadytext-pg-')), base);
      assert.match(server.relocated ?? '', new RegExp(`${home} is not searchable by other users, and PostgreSQL runs as the \`postgres\` user`));
      const c = new pg.Client({ connectionString: server.url });
      await c.connect();
      await c.query('CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)');
      const dir = (await c.query(`SELECT current_setting('data_directory') AS d`)).rows[0].d;
      await c.end();
      assert.equal(dir, server.dataDir);
      assert.equal(statSync(home).mode & 0o777, 0o700, 'the home directory was left as it was');
    } finally {
      await server.stop();
    }
    server = await start();
    try {
      const c = new pg.Client({ connectionString: server.url });
      await c.connect();
      assert.deepEqual((await c.query('SELECT x FROM kept')).rows, [{ x: 42 }], 'a second start finds the same data');
      await c.end();
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  }
});

test('steadytext up with its data directory under a mode-700 directory: ready, and it says where the data is', { skip: !isRoot && 'needs root', timeout: 240_000 }, async () => {
  const home = mkdtempSync(path.join(tmpdir(), 'st-home-'));
  const dataDir = path.join(home, 'clone', '.steadytext');
  const base = relocatedBase(path.join(dataDir, 'pgdata'));
  const env = { ...process.env };
  delete env.DATABASE_URL;
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/steadytext.js'), 'up', '--no-worker', '--port', String(await freePort()), '--data-dir', dataDir], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready line in 200 s; output so far:\n${out}`)), 200_000);
      child.stdout.on('data', () => {
        if (/^ready: postgres:\/\//m.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then((code) => reject(new Error(`up exited (${code}) before ready:\n${out}`)));
    });
    const line = /^PostgreSQL data: (\S+) \((.*)\)$/m.exec(out);
    assert.ok(line, out);
    assert.equal(line[1], path.join(base, 'pgdata'));
    assert.match(line[2], new RegExp(`moved out of ${dataDir}/pgdata: ${home} is not searchable by other users`));
    assert.ok(existsSync(path.join(dataDir, 'credentials.json')), 'the credentials stay in the clone, readable by its owner only');
  } finally {
    child.kill('SIGINT'); // up stops its server, then exits
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(killer);
    rmSync(base, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  }
});
