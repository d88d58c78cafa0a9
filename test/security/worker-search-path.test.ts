// Attack: the database owner (no superuser, CREATE in the install schema
// `public`) plants, in `public`, more specific overloads of what the
// worker's own statements (src/db/) call: functions and operators whose
// argument types match those statements exactly where the built-in needs a
// cast or is polymorphic (make_interval(secs integer), integer ^ integer,
// numeric * integer, unnest(uuid[])...), and exact copies of built-ins
// (now(), bigint <= integer, text || text); and makes `public` come before
// pg_catalog in the database's default search_path, so that even the exact
// copies would win. Each planted function records that it ran. A worker then
// claims, batches, completes, fails and retries, reclaims a lost worker's
// job and stops: not one planted function may run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { urlFor } from '../helpers/db.ts';
import { migrate } from '../../src/db/schema/migrate.ts';
import { startWorker, type Worker } from '../../src/worker/index.ts';
import { testSettings, waitFor } from '../worker/fixtures/queue.ts';
import { makeLogins, superuser, type Logins } from './fixtures.ts';

const DB = `st_wpath_${randomBytes(4).toString('hex')}`;
let url: string;
let logins: Logins;
let su: pg.Client;
let worker: Worker | undefined;
const dir = mkdtempSync(path.join(tmpdir(), 'worker-search-path-'));

// name(argument types) -> return type and the built-in call it stands in for
const FUNCTIONS: Array<{ sig: string; returns: string; call: string; setof?: boolean }> = [
  { sig: 'now()', returns: 'timestamptz', call: 'pg_catalog.now()' },
  { sig: 'make_interval(secs integer)', returns: 'interval', call: 'pg_catalog.make_interval(secs => $1)' },
  { sig: 'unnest(uuid[])', returns: 'uuid', call: 'pg_catalog.unnest($1)', setof: true },
  { sig: 'unnest(text[])', returns: 'text', call: 'pg_catalog.unnest($1)', setof: true },
  { sig: 'unnest(integer[])', returns: 'integer', call: 'pg_catalog.unnest($1)', setof: true },
  { sig: 'unnest(double precision[])', returns: 'double precision', call: 'pg_catalog.unnest($1)', setof: true },
  { sig: 'current_setting(text, boolean)', returns: 'text', call: 'pg_catalog.current_setting($1, $2)' },
];
// operator -> its function, (left, right) -> return type and the built-in expression
const OPERATORS: Array<{ op: string; fn: string; left: string; right: string; returns: string; expr: string }> = [
  { op: '^', fn: 'st_pow', left: 'integer', right: 'integer', returns: 'double precision', expr: 'pg_catalog.power($1::float8, $2::float8)' },
  { op: '*', fn: 'st_mul', left: 'numeric', right: 'integer', returns: 'numeric', expr: '$1 OPERATOR(pg_catalog.*) $2::numeric' },
  { op: '<=', fn: 'st_le', left: 'bigint', right: 'integer', returns: 'boolean', expr: '$1 OPERATOR(pg_catalog.<=) $2' },
  { op: '||', fn: 'st_cat', left: 'text', right: 'text', returns: 'text', expr: 'pg_catalog.textcat($1, $2)' },
];

before(async () => {
  logins = await makeLogins('st_wpath', {
    owner: 'NOSUPERUSER NOCREATEROLE',
    worker: 'IN ROLE steadytext_worker',
  });
  await superuser((c) => c.query(`CREATE DATABASE ${DB} OWNER ${logins.names.owner} TEMPLATE template1`));
  url = urlFor(DB);
  su = new pg.Client({ connectionString: url });
  await su.connect();
  await migrate(su); // installed by a superuser, as `steadytext migrate` would be

  const owner = await logins.as('owner', url);
  await owner.query(`CREATE TABLE public.st_marker (fn text NOT NULL, who name NOT NULL DEFAULT current_user)`);
  await owner.query(`GRANT SELECT, INSERT ON public.st_marker TO PUBLIC`);
  const mark = (what: string) => `INSERT INTO public.st_marker (fn) VALUES (${pg.escapeLiteral(what)});`;
  for (const f of FUNCTIONS) {
    const name = f.sig.slice(0, f.sig.indexOf('('));
    const body = f.setof ? `RETURN QUERY SELECT ${f.call};` : `RETURN ${f.call};`;
    await owner.query(
      `CREATE FUNCTION public.${f.sig} RETURNS ${f.setof ? 'SETOF ' : ''}${f.returns} LANGUAGE plpgsql AS $f$
       BEGIN ${mark(f.sig)} ${body} END $f$`,
    );
    void name;
  }
  for (const o of OPERATORS) {
    await owner.query(
      `CREATE FUNCTION public.${o.fn}(${o.left}, ${o.right}) RETURNS ${o.returns} LANGUAGE plpgsql AS $f$
       BEGIN ${mark(`${o.left} ${o.op} ${o.right}`)} RETURN ${o.expr}; END $f$`,
    );
    await owner.query(`CREATE OPERATOR public.${o.op} (LEFTARG = ${o.left}, RIGHTARG = ${o.right}, FUNCTION = public.${o.fn})`);
  }
  // public before pg_catalog for every new session of this database
  await owner.query(`ALTER DATABASE ${DB} SET search_path = public, pg_catalog`);
});

after(async () => {
  await worker?.stop().catch(() => {});
  await su?.end().catch(() => {});
  await superuser((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  await logins.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function markers(): Promise<string[]> {
  return (await su.query(`SELECT DISTINCT fn FROM public.st_marker ORDER BY 1`)).rows.map((r) => r.fn);
}

test('the planted functions and operators work for a session on the database\'s search_path', async () => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`SELECT now(), 2 ^ 3, 1.5 * 2, 1::bigint <= 2, 'a'::text || 'b'::text, make_interval(secs => 1)`);
  } finally {
    await c.end();
  }
  assert.deepEqual(await markers(), [
    'bigint <= integer',
    'integer ^ integer',
    'make_interval(secs integer)',
    'now()',
    'numeric * integer',
    'text || text',
  ]);
  await su.query('TRUNCATE public.st_marker');
});

test('a worker claiming, batching, completing, retrying, reclaiming and stopping runs none of them', { timeout: 120_000 }, async () => {
  const flaky = path.join(dir, 'flaky');
  writeFileSync(flaky, '');
  const enqueue = (fn: string, params: Record<string, unknown>, priority = 0) =>
    su.query<{ request_id: string }>(
      `INSERT INTO public.steadytext_queue (function_name, parameters, priority) VALUES ($1, $2, $3) RETURNING request_id`,
      [fn, params, priority],
    ).then((r) => r.rows[0].request_id);
  const gen = (prompt: string) => ({ prompt, max_tokens: 16, seed: 42, use_cache: false });
  const ids = [
    await enqueue('generate', gen('plain'), 5),
    await enqueue('generate', gen(`fail-while-file:${flaky}`), 5),
    await enqueue('embed', { text_input: 'e1', use_cache: true }),
    await enqueue('embed', { text_input: 'e2', use_cache: true }),
    await enqueue('embed', { text_input: 'e3', use_cache: true }),
  ];
  // a job left processing by a worker that is gone: the reclaim takes it back
  const ghost = await enqueue('generate', gen('ghost'));
  await su.query(`UPDATE public.steadytext_queue SET status = 'processing', worker_id = 'ghost', attempt = 1, started_at = now() WHERE request_id = $1`, [ghost]);
  ids.push(ghost);

  worker = await startWorker(testSettings(logins.urlAs('worker', url), { concurrency: 2, embedBatchSize: '2', heartbeatTimeout: '5' }));
  const status = async (id: string) => (await su.query(`SELECT status, retry_count FROM public.steadytext_queue WHERE request_id = $1`, [id])).rows[0];
  await waitFor('the flaky job failed once (a retry with backoff)', async () => (await status(ids[1])).retry_count >= 1);
  rmSync(flaky);
  await waitFor('all completed', async () => {
    const r = await su.query(`SELECT count(*)::int AS n FROM public.steadytext_queue WHERE request_id = ANY($1::uuid[]) AND status = 'completed'`, [ids]);
    return r.rows[0].n === ids.length;
  });
  assert.equal((await status(ghost)).retry_count, 1, 'the ghost\'s job was reclaimed as a failed attempt');
  await worker.stop();
  worker = undefined;
  assert.ok(!existsSync(flaky));
  assert.deepEqual(await markers(), [], 'planted functions or operators ran in the worker\'s statements');
});

test('the pinned search_path goes in the startup options, after any the user gives (URL, config or PGOPTIONS); lock_timeout before them', async () => {
  const { withPinnedSearchPath } = await import('../../src/postgres/pinSearchPath.ts');
  assert.deepEqual(withPinnedSearchPath({ connectionString: 'postgres://u@h/db' }, 'public', {}), {
    connectionString: 'postgres://u@h/db',
    options: '-c lock_timeout=5s -c search_path=pg_catalog,public',
  });
  const fromUrl = withPinnedSearchPath({ connectionString: 'postgres://u@h:5/db?sslmode=disable&options=-c%20statement_timeout%3D5' }, 'public', {});
  assert.equal(fromUrl.options, '-c lock_timeout=5s -c statement_timeout=5 -c search_path=pg_catalog,public');
  assert.ok(!fromUrl.connectionString!.includes('options'), 'moved out of the URL, which pg would let win');
  assert.match(fromUrl.connectionString!, /sslmode=disable/);
  assert.equal(withPinnedSearchPath({ host: 'h' }, 'my schema', { PGOPTIONS: '-c work_mem=8MB' }).options, '-c lock_timeout=5s -c work_mem=8MB -c search_path=pg_catalog,"my\\ schema"');
  // The server reads it back: a connection made with it has the pin, whatever the role's default.
  const c = new pg.Client(withPinnedSearchPath({ connectionString: `${url}?options=-c%20search_path%3Dpublic` }, 'public', {}));
  await c.connect();
  try {
    assert.equal((await c.query('SHOW search_path')).rows[0].search_path, 'pg_catalog,public');
    assert.equal((await c.query('SHOW lock_timeout')).rows[0].lock_timeout, '5s', 'no worker statement waits on a lock without a bound');
  } finally {
    await c.end();
  }
});
