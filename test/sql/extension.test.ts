// Packaging: the same scripts (sql/released/ and the current version's, built
// from sql/src/) install by CREATE EXTENSION (written into the server's
// extension directory, as `make -C sql install` does), and by `steadytext
// migrate`, which is idempotent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestDatabase } from '../helpers/db.ts';
import { currentVersion, migrate, SQL_DIR } from '../../src/db/schema/migrate.ts';
import { extensionScripts } from '../../src/db/schema/sqlBuild.ts';
import { installExtensionFiles } from './helpers.ts';
import { runSpecExamples, SPEC, SPEC_MISSING } from './specExamples.ts';

test('CREATE EXTENSION pg_steadytext installs the whole surface, and the spec examples run there', async (t) => {
  const db = await createTestDatabase({ empty: true });
  try {
    const share = (await db.pool.query(`SELECT setting FROM pg_config WHERE name = 'SHAREDIR'`)).rows[0].setting as string;
    try {
      installExtensionFiles(share);
    } catch (err) {
      t.skip(`cannot write to ${share}/extension: ${(err as Error).message}`);
      return;
    }
    await db.pool.query(`CREATE EXTENSION pg_steadytext`);
    const ext = await db.pool.query(`SELECT extversion FROM pg_extension WHERE extname = 'pg_steadytext'`);
    assert.equal(ext.rows[0].extversion, currentVersion());
    const fns = await db.pool.query(
      `SELECT p.proname FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
       WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_steadytext') AND d.classid = 'pg_proc'::regclass
       AND p.proname NOT LIKE '\\_%'`,
    );
    const names = new Set(fns.rows.map((r) => r.proname));
    for (const f of [
      'steadytext_generate_async', 'steadytext_embed_async', 'steadytext_generate_json_async',
      'steadytext_generate_regex_async', 'steadytext_generate_choice_async', 'steadytext_generate_batch_async',
      'steadytext_embed_batch_async', 'steadytext_rerank_async', 'steadytext_check_async',
      'steadytext_check_async_batch', 'steadytext_get_async_result', 'steadytext_cancel_async',
      'steadytext_worker_status', 'steadytext_queue_stats', 'steadytext_cache_key', 'steadytext_limits',
      'steadytext_cache_stats', 'steadytext_cache_clear', 'steadytext_cache_evict', 'steadytext_embedding',
      'steadytext_retry_failed', 'steadytext_dblink_connstr',
    ]) assert.ok(names.has(f), `${f} belongs to the extension`);

    // the spec's first examples, as written
    const id = (await db.pool.query(`SELECT steadytext_generate_async('Write a poem about databases') AS id`)).rows[0].id;
    await db.pool.query(`SELECT steadytext_generate_async(
        prompt := 'Explain PostgreSQL indexing',
        max_tokens := 1024,
        seed := 123,
        priority := 1  -- Higher priority
    )`);
    const st = await db.pool.query(`SELECT * FROM steadytext_check_async($1)`, [id]);
    assert.equal(st.rows[0].status, 'pending');
    assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue`)).rows[0].n, 2);
    // migrate sees the extension and applies nothing
    const c = await db.connect();
    const m = await migrate(c);
    assert.deepEqual(m, { from: currentVersion(), to: currentVersion(), applied: [], viaExtension: true });
    // and every other example of the spec, as in spec-examples.test.ts
    if (SPEC && existsSync(SPEC)) await runSpecExamples(c, (line) => t.diagnostic(line), { alterSystem: false });
    else t.diagnostic(SPEC_MISSING);
    // CASCADE: the examples' views depend on steadytext_queue
    await db.pool.query(`DROP EXTENSION pg_steadytext CASCADE`);
    assert.equal((await db.pool.query(`SELECT to_regclass('steadytext_queue') AS t`)).rows[0].t, null);
  } finally {
    await db.drop();
  }
});

test('migrate installs into an empty database once; a second run applies nothing', async () => {
  const db = await createTestDatabase({ empty: true });
  try {
    const c = await db.connect();
    const first = await migrate(c);
    assert.deepEqual(first.applied, [`pg_steadytext--${currentVersion()}.sql`]);
    assert.equal(first.from, null);
    const second = await migrate(c);
    assert.deepEqual(second.applied, []);
    assert.equal(second.from, currentVersion());
    const n = await c.query(`SELECT count(*)::int AS n FROM steadytext_migrations`);
    assert.equal(n.rows[0].n, 1);
    assert.ok((await c.query(`SELECT steadytext_generate_async('installed by migrate') AS id`)).rows[0].id);
  } finally {
    await db.drop();
  }
});

test('make -C sql install stages the control file and every script (PGXS), the current version built from sql/src/', (t) => {
  const pgConfig = ['/usr/lib/postgresql/15/bin/pg_config', '/usr/bin/pg_config'].find((p) => existsSync(p));
  if (!pgConfig) {
    t.skip('no pg_config with PGXS on this machine');
    return;
  }
  let pgxs: string;
  try {
    pgxs = execFileSync(pgConfig, ['--pgxs'], { encoding: 'utf8' }).trim();
  } catch {
    t.skip('pg_config --pgxs failed');
    return;
  }
  if (!existsSync(pgxs)) {
    t.skip(`PGXS makefile ${pgxs} is not installed`);
    return;
  }
  const dest = mkdtempSync(path.join(tmpdir(), 'stx-make-'));
  try {
    execFileSync('make', ['-C', SQL_DIR, 'install', `PG_CONFIG=${pgConfig}`, `DESTDIR=${dest}`], { stdio: 'pipe' });
    const share = execFileSync(pgConfig, ['--sharedir'], { encoding: 'utf8' }).trim();
    const dir = path.join(dest, share, 'extension');
    const expected = new Map(extensionScripts());
    expected.set('pg_steadytext.control', readFileSync(path.join(SQL_DIR, 'pg_steadytext.control'), 'utf8'));
    assert.deepEqual(readdirSync(dir).sort(), [...expected.keys()].sort());
    // byte for byte what CREATE EXTENSION and `steadytext migrate` run in the other tests
    for (const [f, text] of expected) assert.equal(readFileSync(path.join(dir, f), 'utf8'), text, f);
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
});
