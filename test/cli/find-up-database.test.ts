// In the directory where `steadytext up` runs, the other commands find its
// database without a URL (as `up` finds it: the data directory, and the port
// its server runs on), and `up` prints the export line for other programs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../helpers/freePort.ts';
import { runCli, startCli } from './fixtures/cli.ts';
import { startUp } from './fixtures/up.ts';
import { waitFor } from '../worker/fixtures/queue.ts';

test('status, enqueue, wait, doctor and dashboard find the database of steadytext up without --database-url', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'steadytext-find-up-'));
  chmodSync(dir, 0o755); // as root, PostgreSQL runs as the `postgres` user and must reach its data
  // The data directory as `up` and the commands both resolve it (STEADYTEXT_DATA_DIR, default ./.steadytext);
  // no DATABASE_URL, no port: the port comes from the running server.
  const env = { STEADYTEXT_DATA_DIR: path.join(dir, '.steadytext'), DATABASE_URL: '', STEADYTEXT_PG_PORT: '', STEADYTEXT_ENGINE_MODULE: '' };
  const port = await freePort();
  const up = startUp(['--models', 'tiny', '--port', String(port), '--metrics-port', '0', '--log-level', 'silent'], env);
  try {
    const url = await up.ready;
    assert.ok(url, up.output());
    assert.match(up.output(), new RegExp(`^export DATABASE_URL='${url!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}'$`, 'm'), 'the line to paste elsewhere');

    const status = await runCli(['status'], env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^workers: 1 running/m);

    const enqueued = await runCli(['enqueue', 'generate', 'hello', '--max-tokens', '4'], env);
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const waited = await runCli(['wait', enqueued.stdout.trim(), '--timeout', '120'], env, 150_000);
    assert.equal(waited.code, 0, waited.stderr);
    assert.match(waited.stdout, /\tcompleted\t/);

    const doctor = await runCli(['doctor', '--json'], { ...env, STEADYTEXT_MODELS: 'tiny' });
    const connection = JSON.parse(doctor.stdout).checks.find((c: { name: string }) => c.name === 'connection');
    assert.equal(connection.status, 'ok');
    assert.match(connection.message, new RegExp(`127\\.0\\.0\\.1:${port}/postgres \\(the embedded PostgreSQL of \`steadytext up\` in ${env.STEADYTEXT_DATA_DIR}\\)`));

    const dashboard = startCli(['dashboard', '--port', '0'], env);
    try {
      await waitFor('the dashboard serving', async () => /^dashboard: http:\/\//m.test(dashboard.stdout()), 60_000);
    } finally {
      dashboard.kill('SIGINT');
      await dashboard.result;
    }
    assert.equal(await up.stop(), 0, up.output());
    // Stopped: a command says whose server it tried, and how to start it.
    const after = await runCli(['status'], env);
    assert.equal(after.code, 3, after.stderr);
    assert.match(after.stderr, /cannot connect to the database \(the embedded PostgreSQL of `steadytext up` in .*, which is not running: start it with `steadytext up`\)/);
  } finally {
    await up.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with neither a URL nor a steadytext up here, a command says what to do (exit 2)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'steadytext-no-up-'));
  try {
    const r = await runCli(['status'], { STEADYTEXT_DATA_DIR: path.join(dir, '.steadytext'), DATABASE_URL: '' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no database: pass --database-url or set DATABASE_URL \(or run `steadytext up` here/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
