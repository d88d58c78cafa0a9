// `steadytext doctor`: each check ok / warn / fail with what to fix; exit 1 if any fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { currentVersion } from '../../src/db/schema/migrate.ts';
import pg from 'pg';
import type { Engine } from '../../src/engine/types.ts';
import { createScriptedEngine } from '../helpers/scriptedEngine.ts';
import { createTestDatabase, serverUrl } from '../helpers/db.ts';
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

/** steadytext_setup_handoff() in `db` (as `steadytext migrate` runs it); its login is cluster-wide: drop it after the database. */
async function setupHandoff(db: Awaited<ReturnType<typeof createTestDatabase>>): Promise<() => Promise<void>> {
  await db.pool.query('CREATE EXTENSION IF NOT EXISTS dblink');
  const login = (await db.pool.query('SELECT steadytext_setup_handoff() AS l')).rows[0].l as string;
  return async () => {
    const admin = new pg.Client({ connectionString: serverUrl() });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${login}`).finally(() => admin.end());
  };
}

test('a healthy setup: every check ok or warn, exit 0', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const worker = await startTestWorker(db.url);
  let dropLogin = async () => {};
  try {
    dropLogin = await setupHandoff(db);
    const d = await doctor({ DATABASE_URL: db.url, STEADYTEXT_MODELS: 'tiny' });
    assert.equal(d.code, 0);
    assert.equal(d.ok, true);
    assert.deepEqual(d.checks.map((c) => c.name), ['connection', 'postgresql', 'pg_steadytext', 'dblink', 'hand-off', 'pgvector', 'models', 'workers']);
    for (const name of ['connection', 'postgresql', 'pg_steadytext', 'dblink', 'hand-off', 'models', 'workers']) {
      assert.equal(d.byName.get(name)!.status, 'ok', `${name}: ${d.byName.get(name)!.message}`);
    }
    assert.match(d.byName.get('postgresql')!.message, /^PostgreSQL \d+/);
    assert.match(d.byName.get('pg_steadytext')!.message, new RegExp(`^${currentVersion()} installed by steadytext migrate in schema public`));
    assert.match(d.byName.get('hand-off')!.message, /^dblink logs in as steadytext_handoff_\d+ \(connection limit 16\)$/);
    assert.match(d.byName.get('pgvector')!.message, /optional/, 'pgvector is optional: ok either way, and says so');
    assert.equal(d.byName.get('pgvector')!.status, 'ok');
    assert.match(d.byName.get('workers')!.message, /1 live worker/);
    // What the live worker serves (the scripted engine's models), not this host's set.
    assert.equal(d.byName.get('models')!.message, 'served by 1 live worker: embedding scripted-embedding, generation scripted-generation, reranking scripted-reranking');

    const text = await runCli(['doctor'], { DATABASE_URL: db.url, STEADYTEXT_MODELS: 'tiny', STEADYTEXT_ENGINE_MODULE: '' });
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^\[ok {2}\] connection {5}connected to postgres:\/\/postgres:\*\*\*@/m, 'password redacted');
    assert.match(text.stdout, /^all checks passed$/m);
  } finally {
    await worker.stop();
    await db.drop();
    await dropLogin();
  }
});

test('models: doctor judges what the running workers serve, not this host\'s model set', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  // A worker on the tiny models, while this host's set (STEADYTEXT_MODELS=default) has no file at all.
  const tiny = await startTestWorker(db.url, { engineModule: '', models: 'tiny', workerId: 'tiny-worker' });
  let refusing: Awaited<ReturnType<typeof startTestWorker>> | undefined;
  try {
    const env = { DATABASE_URL: db.url, STEADYTEXT_MODELS: 'default', STEADYTEXT_MODEL_DIR: '/nonexistent/models' };
    const d = await doctor(env);
    const models = d.byName.get('models')!;
    assert.equal(models.status, 'ok', models.message);
    assert.match(models.message, /^served by 1 live worker: embedding tiny-embedding-v\d+-seed\d+, generation tiny-generation-v\d+-seed\d+, reranking tiny-reranking-v\d+-seed\d+; the tiny test models: their output is test noise$/);

    // Only a worker that lacks the reranking model: rerank jobs have no taker.
    await tiny.stop();
    const engine = {
      ...createScriptedEngine(),
      refusals: () => [{ function: 'rerank', reason: 'the reranking model is not here' }],
    } as Engine;
    refusing = await startTestWorker(db.url, { workerId: 'no-reranker' }, { engine });
    const partial = (await doctor(env)).byName.get('models')!;
    assert.equal(partial.status, 'warn');
    assert.match(partial.message, /none takes rerank jobs/);
    assert.match(partial.fix!, /start log of each worker says why.*steadytext models pull/);
  } finally {
    await tiny.stop();
    await refusing?.stop();
    await db.drop();
  }
});

test('the README\'s extension path without steadytext_setup_handoff(): doctor says the hand-off is not set up', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  try {
    await db.pool.query('CREATE EXTENSION dblink');
    const d = await doctor({ DATABASE_URL: db.url, STEADYTEXT_MODELS: 'tiny' });
    assert.equal(d.byName.get('dblink')!.status, 'ok');
    const handoff = d.byName.get('hand-off')!;
    assert.equal(handoff.status, 'warn');
    assert.match(handoff.message, /not set up: the synchronous functions \(steadytext_generate, \.\.\.\) .* fail until it is/);
    assert.match(handoff.fix!, /^SELECT "?public"?\.steadytext_setup_handoff\(\);/);
    // And it is what the synchronous functions need: they fail without it.
    const worker = await startTestWorker(db.url);
    try {
      await assert.rejects(db.pool.query(`SELECT steadytext_generate('x', use_cache := false)`), /hand-off login, which is not set up/);
    } finally {
      await worker.stop();
    }
  } finally {
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
    assert.match(d.byName.get('dblink')!.message, /the synchronous functions \(steadytext_generate, \.\.\.\) .* need it/);
    assert.equal(d.byName.get('dblink')!.fix, 'CREATE EXTENSION dblink; then SELECT steadytext_setup_handoff(); (`steadytext migrate` does both)');
    assert.equal(d.byName.get('hand-off')!.status, 'warn');
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
