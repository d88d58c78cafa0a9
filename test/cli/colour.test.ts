// Tables are coloured on a terminal only, and never with NO_COLOR set:
// `steadytext models list`, `steadytext status` and `steadytext pipelines` through a pipe, and
// through a pseudo-terminal (util-linux `script`), with and without NO_COLOR.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { useColor } from '../../src/cli/color.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { createDocumentsPipeline } from '../helpers/pipelines.ts';
import { CLI } from './fixtures/cli.ts';

const ESC = '\x1b[';
const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;

function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  // As a person's terminal: no CI variable (cli-table3's colour library turns
  // colours off wherever CI is set, and CI runs this suite with CI=true).
  const { CI: _ci, ...base } = process.env;
  return new Promise((resolve, reject) =>
    execFile(file, args, { env: { ...base, NODE_OPTIONS: '', ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
}

/** The command's stdout through a pipe. */
const piped = (args: string[], env: NodeJS.ProcessEnv = {}) => run(process.execPath, [CLI, ...args], env);

/** The command's output on a pseudo-terminal (its stdout is a TTY). */
const onTerminal = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  run('script', ['-qec', [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' '), '/dev/null'], env);

test('useColor: a TTY without NO_COLOR only', () => {
  assert.equal(useColor({ isTTY: true }, {}), true);
  assert.equal(useColor({ isTTY: true }, { NO_COLOR: '1' }), false);
  assert.equal(useColor({ isTTY: true }, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count (no-color.org)');
  assert.equal(useColor({ isTTY: false }, {}), false);
  assert.equal(useColor({}, {}), false);
});

test('models list: no colour codes into a pipe; colours on a terminal unless NO_COLOR', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'st-colour-'));
  const args = ['models', 'list', '--models', 'tiny', '--model-dir', dir];
  try {
    const out = await piped(args);
    assert.match(out, /│ role\s+│ present/);
    assert.ok(!out.includes(ESC), `no colour codes through a pipe:\n${JSON.stringify(out.slice(0, 300))}`);
    if (hasScript) {
      assert.ok((await onTerminal(args)).includes(ESC), 'coloured on a terminal');
      const plain = await onTerminal(args, { NO_COLOR: '1' });
      assert.match(plain, /│ role\s+│ present/);
      assert.ok(!plain.includes(ESC), 'NO_COLOR: no colour codes on a terminal');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('status: colours on a terminal unless NO_COLOR', { skip: !hasScript && 'util-linux script is not installed' }, async () => {
  const db = await createTestDatabase();
  try {
    await db.pool.query(`SELECT steadytext_generate_async('colour', use_cache := false)`);
    const env = { DATABASE_URL: db.url };
    assert.ok(!(await piped(['status'], env)).includes(ESC));
    assert.ok((await onTerminal(['status'], env)).includes(ESC));
    const plain = await onTerminal(['status'], { ...env, NO_COLOR: '1' });
    assert.match(plain, /queue: 1 request/);
    assert.ok(!plain.includes(ESC));
  } finally {
    await db.drop();
  }
});

test('pipelines: colours on a terminal unless NO_COLOR', { skip: !hasScript && 'util-linux script is not installed' }, async () => {
  const db = await createTestDatabase();
  try {
    await createDocumentsPipeline(db.pool, { rows: 2 });
    const env = { DATABASE_URL: db.url };
    assert.ok(!(await piped(['pipelines'], env)).includes(ESC));
    assert.ok((await onTerminal(['pipelines'], env)).includes(ESC));
    const plain = await onTerminal(['pipelines'], { ...env, NO_COLOR: '1' });
    assert.match(plain, /│ doc_embeddings\s+│/);
    assert.ok(!plain.includes(ESC));
  } finally {
    await db.drop();
  }
});
