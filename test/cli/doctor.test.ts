// `steadytext doctor`: each check ok / warn / fail with what to fix; exit 1 if any fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { currentVersion } from '../../src/db/migrate.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { startTestWorker } from '../worker/fixtures/queue.ts';
import { runCli } from './fixtures/cli.ts';

// db.drop() ends the pool, then DROP DATABASE ... WITH (FORCE): a backend still closing
// reports 57P01 to its (removed) client, which the pool re-emits; without a listener
// that would be an uncaught exception in whichever test runs next.
const ignoreDropError = () => {};

interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  message: string;
  fix?: string;
}

async function doctor(env: NodeJS.ProcessEnv, ...args: string[]) {
  const r = await runCli(['doctor', '--json', ...args], { STEADYTEXT_ENGINE_MODULE: '', ...env });
  const out = JSON.parse(r.stdout) as { ok: boolean; checks: Check[] };
  return { code: r.code, ok: out.ok, byName: new Map(out.checks.map((c) => [c.name, c])), checks: out.checks };
}

test('a healthy setup: every check ok or warn, exit 0', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const worker = await startTestWorker(db.url);
  try {
    await db.pool.query('CREATE EXTENSION dblink');
    const d = await doctor({ DATABASE_URL: db.url, STEADYTEXT_MODELS: 'tiny' });
    assert.equal(d.code, 0);
    assert.equal(d.ok, true);
    assert.deepEqual(d.checks.map((c) => c.name), ['connection', 'postgresql', 'pg_steadytext', 'dblink', 'pgvector', 'models', 'workers']);
    for (const name of ['connection', 'postgresql', 'pg_steadytext', 'dblink', 'models', 'workers']) {
      assert.equal(d.byName.get(name)!.status, 'ok', `${name}: ${d.byName.get(name)!.message}`);
    }
    assert.match(d.byName.get('postgresql')!.message, /^PostgreSQL \d+/);
    assert.match(d.byName.get('pg_steadytext')!.message, new RegExp(`^${currentVersion()} installed by steadytext migrate in schema public`));
    assert.match(d.byName.get('pgvector')!.message, /optional/, 'pgvector is optional: ok either way, and says so');
    assert.equal(d.byName.get('pgvector')!.status, 'ok');
    assert.match(d.byName.get('workers')!.message, /1 live worker/);
    assert.match(d.byName.get('models')!.message, /tiny set/);

    const text = await runCli(['doctor'], { DATABASE_URL: db.url, STEADYTEXT_MODELS: 'tiny', STEADYTEXT_ENGINE_MODULE: '' });
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^\[ok {2}\] connection {5}connected to postgres:\/\/postgres:\*\*\*@/m, 'password redacted');
    assert.match(text.stdout, /^all checks passed$/m);
  } finally {
    await worker.stop();
    await db.drop();
  }
});

test('warnings say what to fix: no dblink, no worker, missing models', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  try {
    const d = await doctor({ DATABASE_URL: db.url, STEADYTEXT_MODELS: 'default', STEADYTEXT_MODEL_DIR: '/nonexistent/models' });
    assert.equal(d.code, 0, 'warnings do not fail');
    assert.equal(d.byName.get('pg_steadytext')!.status, 'ok');
    assert.equal(d.byName.get('dblink')!.status, 'warn');
    assert.equal(d.byName.get('dblink')!.fix, 'CREATE EXTENSION dblink;');
    assert.equal(d.byName.get('workers')!.status, 'warn');
    assert.match(d.byName.get('workers')!.fix!, /steadytext worker/);
    const models = d.byName.get('models')!;
    assert.equal(models.status, 'warn');
    assert.match(models.fix!, /steadytext models pull.*\/nonexistent\/models/);
  } finally {
    await db.drop();
  }
});

test('failures exit 1: not installed, unreachable', async () => {
  const empty = await createTestDatabase({ empty: true });
  empty.pool.on('error', ignoreDropError);
  try {
    const d = await doctor({ DATABASE_URL: empty.url, STEADYTEXT_MODELS: 'tiny' });
    assert.equal(d.code, 1);
    assert.equal(d.ok, false);
    assert.equal(d.byName.get('pg_steadytext')!.status, 'fail');
    assert.match(d.byName.get('pg_steadytext')!.fix!, /steadytext migrate/);
    assert.equal(d.byName.get('workers')!.status, 'fail');

    const down = await doctor({ DATABASE_URL: 'postgres://postgres:secret@127.0.0.1:1/nothing', STEADYTEXT_MODELS: 'tiny' });
    assert.equal(down.code, 1);
    assert.equal(down.byName.get('connection')!.status, 'fail');
    assert.ok(!down.byName.get('connection')!.message.includes('secret'), 'password redacted');
    assert.equal(down.byName.get('models')!.status, 'ok', 'host checks still run');

    const text = await runCli(['doctor'], { DATABASE_URL: empty.url, STEADYTEXT_MODELS: 'tiny' });
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^\[FAIL\] pg_steadytext +not installed in this database\n +-> run `steadytext migrate`/m);
    assert.match(text.stdout, /^2 checks failed$/m);
  } finally {
    await empty.drop();
  }
});
