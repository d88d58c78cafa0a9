// No secret is ever in a file others can read: `steadytext up`'s first start
// (the embedded cluster's initdb, the credentials it keeps). The child
// (initdbSecretChild.ts) records the password file each initdb is handed at
// the moment initdb starts, the only time that file exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../helpers/freePort.ts';
import { ROOT } from '../worker/fixtures/queue.ts';

/** Every regular file under `dir` whose bytes contain `secret`. */
function filesHolding(dir: string, secret: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const file = path.join(entry.parentPath, entry.name);
    if (entry.isFile() && readFileSync(file).includes(secret)) out.push(file);
  }
  return out;
}

test("`up`'s first start: the superuser's password is never in a file other users can read (initdb's password file, credentials.json)", async () => {
  // A parent every user may search, as a clone in /srv or /home/<user> with mode 755
  // (a mode-700 parent would hide everything below it and prove nothing).
  const parent = mkdtempSync(path.join(os.tmpdir(), 'steadytext-secrets-'));
  chmodSync(parent, 0o755);
  const dataDir = path.join(parent, '.steadytext');
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/security/initdbSecretChild.ts'), dataDir, String(await freePort())], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 0, `the child failed: ${err}`);
    const report = JSON.parse(out.trim().split('\n').at(-1)!) as {
      seen: Array<{ pwfile: string; mode: number; uid: number; content: string }>;
      dataDir: string;
    };
    const credentials = path.join(dataDir, 'credentials.json');
    const { password } = JSON.parse(readFileSync(credentials, 'utf8')) as { password: string };

    // initdb got the password in a file: one only its owner can read, gone afterwards.
    assert.equal(report.seen.length, 1, 'one initdb, handed one password file');
    const [pw] = report.seen;
    assert.equal(pw.content, `${password}\n`);
    assert.equal(pw.mode & 0o077, 0, `${pw.pwfile} has mode ${pw.mode.toString(8)}: group and others can read the superuser's password`);
    assert.equal(existsSync(pw.pwfile), false, 'the password file is removed once initdb has run');

    // What stays on disk: credentials.json (0600), nothing else holding the password in clear.
    assert.equal(statSync(credentials).mode & 0o077, 0, 'credentials.json is readable by its owner only');
    assert.deepEqual(filesHolding(dataDir, password), [credentials]);
    if (report.dataDir !== path.join(dataDir, 'pgdata')) assert.deepEqual(filesHolding(report.dataDir, password), []);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});
