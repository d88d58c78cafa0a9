// After `steadytext migrate` alone (no `up`), the synchronous functions work:
// migrate installs dblink where the server has it and sets up the hand-off,
// as `up` does and as their error hints say.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createTestDatabase, serverUrl } from '../helpers/db.ts';
import { startTestWorker } from '../worker/fixtures/queue.ts';
import { runCli } from './fixtures/cli.ts';

const ignoreDropError = () => {};

test('steadytext migrate on a bare database, then a worker: steadytext_generate answers, and doctor reports dblink and the hand-off ok', { timeout: 120_000 }, async () => {
  const db = await createTestDatabase({ empty: true });
  db.pool.on('error', ignoreDropError);
  let login: string | undefined;
  try {
    assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'dblink'`)).rows[0].n, 0, 'no dblink before');
    const migrated = await runCli(['migrate', '--json', '--database-url', db.url]);
    assert.equal(migrated.code, 0, migrated.stderr);
    const out = JSON.parse(migrated.stdout);
    assert.match(out.dblink, /^\d+\.\d+$/, 'dblink installed, its version reported');
    login = out.handoffLogin;
    assert.match(login!, /^steadytext_handoff_\d+$/);

    const worker = await startTestWorker(db.url);
    try {
      const r = await db.pool.query(`SELECT steadytext_generate('hello', use_cache := false) AS r`);
      assert.equal(r.rows[0].r, 'echo:hello');
      const doctor = await runCli(['doctor', '--json'], { DATABASE_URL: db.url, STEADYTEXT_ENGINE_MODULE: '', STEADYTEXT_MODELS: 'tiny' });
      const checks = new Map((JSON.parse(doctor.stdout).checks as Array<{ name: string; status: string }>).map((c) => [c.name, c.status]));
      assert.equal(checks.get('dblink'), 'ok');
      assert.equal(checks.get('hand-off'), 'ok');
    } finally {
      await worker.stop();
    }
  } finally {
    await db.drop();
    if (login) {
      const admin = new pg.Client({ connectionString: serverUrl() });
      await admin.connect();
      await admin.query(`DROP ROLE IF EXISTS ${login}`).finally(() => admin.end());
    }
  }
});
