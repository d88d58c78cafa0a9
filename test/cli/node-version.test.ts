// `steadytext` on a Node.js older than package.json's engines.node refuses
// with one line and exit 1, before loading anything (npm itself only warns,
// EBADENGINE, and everything would then half-work).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from '../worker/fixtures/queue.ts';

const BIN = path.join(ROOT, 'bin', 'steadytext.js');
const minimum = Number(/>=\s*(\d+)/.exec(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).engines.node)![1]);

function runWith(node: string, bin: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(node, [bin, ...args], { env: { ...process.env, NODE_OPTIONS: '' }, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

/** The one line, and nothing else: no stack, no help, nothing on stdout. */
function assertRefused(r: { code: number | null; stdout: string; stderr: string }, need: number, node: string, version: string) {
  assert.equal(r.code, 1, `exit 1 (stderr: ${r.stderr})`);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, `steadytext: needs Node.js ${need} or newer; this is ${version} (${node})\n`);
}

test('below engines.node (a package that asks for Node 999): one line, exit 1', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'st-node-min-'));
  try {
    mkdirSync(path.join(dir, 'bin'));
    copyFileSync(BIN, path.join(dir, 'bin', 'steadytext.js'));
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', engines: { node: '>=999' } }));
    const r = await runWith(process.execPath, path.join(dir, 'bin', 'steadytext.js'), ['--help']);
    assertRefused(r, 999, process.execPath, process.version);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The machines this project runs on have Debian's Node.js 20 at /usr/bin/node
// (CI installs 24 beside it): the real case.
const oldNode = '/usr/bin/node';
const oldVersion = spawnSync(oldNode, ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? '';
const oldMajor = Number(/^v(\d+)/.exec(oldVersion)?.[1] ?? NaN);
test(`${oldNode} (${oldVersion || 'absent'}): steadytext refuses it`, {
  skip: !(oldMajor < minimum) && `${oldNode} is ${oldVersion || 'absent'}, not older than Node.js ${minimum}`,
}, async () => {
  for (const args of [['--help'], ['status'], ['worker', '--database-url', 'postgres://127.0.0.1:1/x']]) {
    assertRefused(await runWith(oldNode, BIN, args), minimum, oldNode, oldVersion);
  }
});

test('the supported Node.js (this one) runs it', async () => {
  assert.ok(Number(process.versions.node.split('.')[0]) >= minimum, `the tests run on Node.js ${minimum}+`);
  const r = await runWith(process.execPath, BIN, ['--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(r.stdout.trim(), JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
});
