// Schema versions upgrade in place: a database installed at any released
// version (1.0.0, 1.1.0, 1.2.0, 1.3.0, 1.4.0, 1.5.0, 1.6.0, 1.7.0), holding jobs in every state, cache rows, workers and
// config, is brought to the current version by `steadytext migrate` and by
// ALTER EXTENSION ... UPDATE (through every version in between). Each must end with exactly the schema of a fresh
// install, every row kept, and a current worker running its pending jobs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import type { Queryable } from '../../src/db/queryable.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { currentVersion, migrate } from '../../src/db/schema/migrate.ts';
import { installExtensionFiles } from './helpers.ts';
import { schemaDump, schemaFingerprint } from './schemaFingerprint.ts';
import { startTestWorker, waitFor } from '../worker/fixtures/queue.ts';

/** Every released schema version before the current one. */
const RELEASED_VERSIONS = ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.4.0', '1.5.0', '1.6.0', '1.7.0'];


/** Jobs in every state, a batch, cache rows, a worker row, config and a dead letter, through the released version's own functions. */
async function populate(db: Queryable): Promise<void> {
  await db.query(`SELECT steadytext_generate_async('still pending', priority := 3)`);
  await db.query(`SELECT steadytext_generate_batch_async(ARRAY['batch a', 'batch b'], max_tokens := 20)`);
  await db.query(`SELECT steadytext_embed_async('pending embed')`);
  await db.query(`SELECT steadytext_rerank_async('q', ARRAY['d1', 'd2'])`);
  for (const [prompt, status] of [['was processing', 'processing'], ['was completed', 'completed'], ['was failed', 'failed']]) {
    const id = (await db.query(`SELECT steadytext_generate_async($1) AS id`, [prompt])).rows[0].id;
    await db.query(
      `UPDATE steadytext_queue SET status = $2, started_at = now(), worker_id = 'old-worker', attempt = 1,
              result = CASE WHEN $2 = 'completed' THEN 'old result' END,
              error = CASE WHEN $2 = 'failed' THEN 'old error' END
       WHERE request_id = $1`,
      [id, status],
    );
  }
  const cancelled = (await db.query(`SELECT steadytext_generate_async('to cancel') AS id`)).rows[0].id;
  await db.query(`SELECT steadytext_cancel_async($1)`, [cancelled]);
  await db.query(
    `INSERT INTO steadytext_cache (cache_key, function_name, model_id, parameters, result)
     VALUES ('k1', 'generate', 'm', '{"prompt": "p"}', 'cached'), ('k2', 'embed', 'm', '{"text_input": "t"}', '[0.1]')`,
  );
  await db.query(
    `INSERT INTO steadytext_workers (worker_id, host, pid, status, last_heartbeat)
     VALUES ('old-worker', 'h', 1, 'running', now() - interval '1 hour')`,
  );
  await db.query(`INSERT INTO steadytext_config (key, value) VALUES ('model.generation', '"old-model"')`);
  await db.query(
    `INSERT INTO steadytext_dead_letter_queue (request_id, function_name, parameters, status, failure_reason)
     VALUES (gen_random_uuid(), 'generate', '{}', 'failed', 'old')`,
  );
}

/** Every row of every table, as text, for a before/after comparison. */
async function contents(db: Queryable): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [table, key] of [
    ['steadytext_queue', 'request_id'], ['steadytext_cache', 'cache_key'], ['steadytext_workers', 'worker_id'],
    ['steadytext_config', 'key'], ['steadytext_dead_letter_queue', 'request_id'],
  ]) {
    // the columns the old version has: what an upgrade must keep as it was
    const cols = (await db.query<{ c: string }>(
      `SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS c FROM pg_attribute
       WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, [table],
    )).rows[0].c;
    const r = await db.query<{ t: string }>(`SELECT (${key})::text || ' ' || row(${cols})::text AS t FROM ${table}`);
    out[table] = r.rows.map((x) => x.t).sort();
  }
  return out;
}

function keepColumnsOf(before: Record<string, string[]>, after: Record<string, string[]>): void {
  for (const table of Object.keys(before)) {
    assert.equal(after[table].length, before[table].length, `${table}: every row survived`);
    // new columns may follow the old ones: each old row is a prefix of its new form
    const byKey = new Map(after[table].map((t) => [t.split(' ')[0], t]));
    for (const old of before[table]) {
      const now = byKey.get(old.split(' ')[0]);
      assert.ok(now, `${table}: row ${old.split(' ')[0]} survived`);
      const oldRow = old.slice(old.indexOf(' ') + 1).replace(/\)$/, '');
      assert.ok(now.slice(now.indexOf(' ') + 1).startsWith(oldRow), `${table}: ${old} kept its values (now ${now})`);
    }
  }
}

async function assertSameSchema(upgraded: TestDatabase, fresh: TestDatabase): Promise<void> {
  const [up, fr] = [await schemaFingerprint(upgraded.pool), await schemaFingerprint(fresh.pool)];
  for (const aspect of Object.keys(fr)) {
    const only = (a: string[], b: string[]) => a.filter((x) => !b.includes(x));
    assert.deepEqual(
      { onlyUpgraded: only(up[aspect], fr[aspect]), onlyFresh: only(fr[aspect], up[aspect]) },
      { onlyUpgraded: [], onlyFresh: [] },
      `${aspect} of the upgraded database differ from a fresh install`,
    );
  }
  const [a, b] = [await schemaDump(upgraded.pool, upgraded.url), await schemaDump(fresh.pool, fresh.url)];
  if (a !== null && b !== null) assert.equal(a, b, 'pg_dump --schema-only of upgraded and fresh installs');
}

/** Pending jobs of the old version run on a worker of the new one. */
async function pendingJobsRun(db: TestDatabase): Promise<void> {
  const pending = (await db.pool.query(`SELECT request_id FROM steadytext_queue WHERE status = 'pending'`)).rows.map((r) => r.request_id);
  assert.ok(pending.length >= 5);
  const w = await startTestWorker(db.url);
  try {
    await waitFor('the pending jobs of the old version to complete on a current worker', async () => {
      const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE request_id = ANY($1) AND status = 'completed'`, [pending]);
      return r.rows[0].n === pending.length;
    }, 30_000);
    const id = (await db.pool.query(`SELECT steadytext_generate_async('after the upgrade') AS id`)).rows[0].id;
    await waitFor('a new job to complete', async () => (await db.pool.query(`SELECT status FROM steadytext_queue WHERE request_id = $1`, [id])).rows[0].status === 'completed', 30_000);
  } finally {
    await w.stop();
  }
}

for (const RELEASED of RELEASED_VERSIONS) {
test(`steadytext migrate upgrades a ${RELEASED} install in place: same schema as a fresh install, every row kept, pending jobs run`, async () => {
  const db = await createTestDatabase({ empty: true });
  const fresh = await createTestDatabase();
  try {
    const c = await db.connect();
    const first = await migrate(c, { target: RELEASED });
    assert.deepEqual(first.applied, [`pg_steadytext--${RELEASED}.sql`]);
    await populate(c);
    const before = await contents(c);

    const up = await migrate(c);
    assert.equal(up.from, RELEASED);
    assert.equal(up.to, currentVersion());
    assert.ok(up.applied.length >= 1 && up.applied.at(-1)!.endsWith(`--${currentVersion()}.sql`), up.applied.join(', '));
    assert.deepEqual((await migrate(c)).applied, [], 'a second migrate applies nothing');

    await assertSameSchema(db, fresh);
    keepColumnsOf(before, await contents(c));
    await pendingJobsRun(db);
  } finally {
    await db.drop();
    await fresh.drop();
  }
});

test(`ALTER EXTENSION pg_steadytext UPDATE upgrades a ${RELEASED} extension: same schema as CREATE EXTENSION of the new version`, async (t) => {
  const db = await createTestDatabase({ empty: true });
  const fresh = await createTestDatabase({ empty: true });
  try {
    const share = (await db.pool.query(`SELECT setting FROM pg_config WHERE name = 'SHAREDIR'`)).rows[0].setting as string;
    try {
      installExtensionFiles(share);
    } catch (err) {
      t.skip(`cannot write to ${share}/extension: ${(err as Error).message}`);
      return;
    }
    await db.pool.query(`CREATE EXTENSION pg_steadytext VERSION '${RELEASED}'`);
    await populate(db.pool);
    const before = await contents(db.pool);
    // `steadytext migrate` on an extension install goes through ALTER EXTENSION
    const c = await db.connect();
    const up = await migrate(c);
    assert.deepEqual(up, { from: RELEASED, to: currentVersion(), applied: [`ALTER EXTENSION pg_steadytext UPDATE TO '${currentVersion()}'`], viaExtension: true });
    assert.equal((await db.pool.query(`SELECT extversion FROM pg_extension WHERE extname = 'pg_steadytext'`)).rows[0].extversion, currentVersion());

    await fresh.pool.query(`CREATE EXTENSION pg_steadytext`);
    await assertSameSchema(db, fresh);
    keepColumnsOf(before, await contents(db.pool));
    await pendingJobsRun(db);
  } finally {
    await db.drop();
    await fresh.drop();
  }
});
}
