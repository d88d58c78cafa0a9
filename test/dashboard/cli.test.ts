import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createTestDatabase } from '../helpers/db.ts';
import { ROOT, waitFor } from '../worker/fixtures/queue.ts';

test('`steadytext dashboard --port 0` prints its URL and serves the page and /api/summary', async () => {
  const db = await createTestDatabase();
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/steadytext.js'), 'dashboard', '--database-url', db.url, '--port', '0'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    const url = await waitFor(`the dashboard line (stderr: ${err})`, async () => /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1], 20_000, 50);
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>pg-steadytext dashboard<\/title>/);
    const summary = (await (await fetch(new URL('/api/summary', url))).json()) as Record<string, any>;
    assert.deepEqual(summary.totals, { pending: 0, processing: 0, completed: 0, failed: 0, cancelled: 0 });
    assert.deepEqual(summary.failed, []);
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    child.kill('SIGKILL');
    await db.drop();
  }
});

test('`steadytext dashboard` with an unreachable database exits 3', async () => {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/steadytext.js'), 'dashboard', '--database-url', 'postgres://127.0.0.1:1/none', '--port', '0'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 3, err);
  assert.match(err, /cannot read the queue/);
});
