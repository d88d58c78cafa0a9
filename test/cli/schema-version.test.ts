// A worker started against a schema older or newer than the one it expects
// stops at once with a message naming both versions and what to run, before
// it registers or touches a job; `steadytext doctor` fails the same check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { currentVersion, migrate } from '../../src/db/schema/migrate.ts';
import { SchemaVersionError } from '../../src/db/schema/schemaVersion.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { SCRIPTED_ENGINE, startTestWorker } from '../worker/fixtures/queue.ts';
import { runCli } from './fixtures/cli.ts';

const RELEASED = '1.0.0';
const esc = (s: string) => s.replaceAll('.', '\\.');

async function doctorSchemaCheck(url: string) {
  const r = await runCli(['doctor', '--json'], { DATABASE_URL: url, STEADYTEXT_MODELS: 'tiny', STEADYTEXT_ENGINE_MODULE: '' }, 300_000);
  const out = JSON.parse(r.stdout) as { ok: boolean; checks: Array<{ name: string; status: string; message: string; fix?: string }> };
  return { code: r.code, check: out.checks.find((c) => c.name === 'pg_steadytext')! };
}

test(`a worker on a ${RELEASED} schema says to run steadytext migrate, registers nothing and leaves the queue alone; doctor fails the same check`, async () => {
  const db = await createTestDatabase({ empty: true });
  try {
    const c = await db.connect();
    await migrate(c, { target: RELEASED });
    const id = (await c.query(`SELECT steadytext_generate_async('waits for the upgrade') AS id`)).rows[0].id;

    await assert.rejects(startTestWorker(db.url), (err: Error) => {
      assert.ok(err instanceof SchemaVersionError, `${err.name}: ${err.message}`);
      assert.match(err.message, new RegExp(`schema ${esc(RELEASED)} is installed .*needs ${esc(currentVersion())}: run \`steadytext migrate\``));
      return true;
    });
    const cli = await runCli(['worker', '--database-url', db.url], { STEADYTEXT_ENGINE_MODULE: SCRIPTED_ENGINE }, 300_000);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stderr, new RegExp(`pg_steadytext schema ${esc(RELEASED)} is installed.*run \`steadytext migrate\``));
    assert.doesNotMatch(cli.stderr, /column|does not exist/, 'no missing-column error reaches the user');

    assert.equal((await c.query(`SELECT count(*)::int AS n FROM steadytext_workers`)).rows[0].n, 0, 'no worker registered');
    const job = (await c.query(`SELECT status, attempt FROM steadytext_queue WHERE request_id = $1`, [id])).rows[0];
    assert.deepEqual(job, { status: 'pending', attempt: 0 }, 'the job was not claimed');

    const d = await doctorSchemaCheck(db.url);
    assert.equal(d.code, 1);
    assert.equal(d.check.status, 'fail');
    assert.match(d.check.message, new RegExp(`^${esc(RELEASED)} installed by steadytext migrate .*this package is ${esc(currentVersion())}.*refuse to start on an older schema`));
    assert.match(d.check.fix!, /steadytext migrate/);

    // what the message says to do works
    await migrate(c);
    const w = await startTestWorker(db.url);
    await w.stop();
    await c.end();
  } finally {
    await db.drop();
  }
});

test('a worker on a newer schema than its package says to upgrade the package', async () => {
  const db = await createTestDatabase();
  try {
    await db.pool.query(`UPDATE steadytext_migrations SET version = '99.0.0'`);
    await assert.rejects(startTestWorker(db.url), (err: Error) => {
      assert.ok(err instanceof SchemaVersionError);
      assert.match(err.message, new RegExp(`schema 99\\.0\\.0 is installed .*needs ${esc(currentVersion())}: the database is newer than this package: upgrade pg-steadytext to 99\\.0\\.0 or newer`));
      return true;
    });
    const d = await doctorSchemaCheck(db.url);
    assert.equal(d.code, 1);
    assert.equal(d.check.status, 'fail');
    assert.match(d.check.message, /refuse to start on a newer schema/);
    assert.match(d.check.fix!, /upgrade pg-steadytext to 99\.0\.0/);
  } finally {
    await db.drop();
  }
});

test('a worker on a database without pg_steadytext says so', async () => {
  const db = await createTestDatabase({ empty: true });
  try {
    await assert.rejects(startTestWorker(db.url), (err: Error) => {
      assert.ok(err instanceof SchemaVersionError);
      assert.equal(err.installed, null);
      assert.match(err.message, /pg_steadytext is not installed in this database .*run `steadytext migrate`/);
      return true;
    });
  } finally {
    await db.drop();
  }
});
