// What `--help` says, command by command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
