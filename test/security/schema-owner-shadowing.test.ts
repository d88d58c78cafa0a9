// Attack: a database owner who is no superuser (and can CREATE in the install
// schema, `public`, as PostgreSQL 15+ lets the database owner) plants functions
// that shadow the built-ins the schema uses, and more specific overloads of
// them, in the install schema. Each planted function records that it ran
// (a row in a marker table) and then does what the built-in does, so nothing
// visibly breaks. A tenant then calls every public function, an admin the
// admin ones, and a worker runs the jobs: not one planted function may run
// (every function of the schema runs with search_path = pg_catalog, pg_temp
// and names the schema's own objects through @extschema@).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { serverUrl, urlFor } from '../helpers/db.ts';
import { migrate } from '../../src/db/schema/migrate.ts';
import { startWorker, type Worker } from '../../src/worker/index.ts';
import { testSettings, waitFor } from '../worker/fixtures/queue.ts';
import { makeLogins, one, superuser, type Logins } from './fixtures.ts';

const DB = `st_shadow_${randomBytes(4).toString('hex')}`;
let url: string;
let logins: Logins;
let su: pg.Client;
let worker: Worker | undefined;

// name(argument types) -> return type and the built-in call it stands in for
const PLANTED: Array<{ sig: string; returns: string; call: string; setof?: boolean; isVoid?: boolean }> = [
  { sig: 'now()', returns: 'timestamptz', call: 'pg_catalog.now()' },
  { sig: 'clock_timestamp()', returns: 'timestamptz', call: 'pg_catalog.clock_timestamp()' },
  { sig: 'pg_notify(text, text)', returns: 'void', call: 'pg_catalog.pg_notify($1, $2)', isVoid: true },
  { sig: 'gen_random_uuid()', returns: 'uuid', call: 'pg_catalog.gen_random_uuid()' },
  { sig: 'encode(bytea, text)', returns: 'text', call: 'pg_catalog.encode($1, $2)' },
  { sig: 'sha256(bytea)', returns: 'bytea', call: 'pg_catalog.sha256($1)' },
  { sig: 'convert_to(text, text)', returns: 'bytea', call: 'pg_catalog.convert_to($1, $2)' },
  { sig: 'current_setting(text)', returns: 'text', call: 'pg_catalog.current_setting($1)' },
  { sig: 'current_setting(text, boolean)', returns: 'text', call: 'pg_catalog.current_setting($1, $2)' },
  // more specific than json_build_object(VARIADIC "any"): the completion NOTIFY's payload
  { sig: 'json_build_object(text, uuid, text, text, text, text)', returns: 'json', call: 'pg_catalog.json_build_object($1, $2, $3, $4, $5, $6)' },
  { sig: 'json_build_object(text, uuid, text, text, text, text, text, uuid)', returns: 'json', call: 'pg_catalog.json_build_object($1, $2, $3, $4, $5, $6, $7, $8)' },
  // the parameters the enqueue functions build
  { sig: 'jsonb_build_object(text, text, text, integer, text, boolean, text, integer)', returns: 'jsonb', call: 'pg_catalog.jsonb_build_object($1, $2, $3, $4, $5, $6, $7, $8)' },
  { sig: 'jsonb_build_object(text, text, text, boolean)', returns: 'jsonb', call: 'pg_catalog.jsonb_build_object($1, $2, $3, $4)' },
  { sig: 'jsonb_build_object(text, text)', returns: 'jsonb', call: 'pg_catalog.jsonb_build_object($1, $2)' },
  { sig: 'to_jsonb(text[])', returns: 'jsonb', call: 'pg_catalog.to_jsonb($1)' },
  { sig: 'unnest(text[])', returns: 'text', call: 'pg_catalog.unnest($1)', setof: true },
  { sig: 'unnest(uuid[])', returns: 'uuid', call: 'pg_catalog.unnest($1)', setof: true },
  { sig: 'format(text, text)', returns: 'text', call: 'pg_catalog.format($1, $2)' },
  { sig: 'format(text, text, text)', returns: 'text', call: 'pg_catalog.format($1, $2, $3)' },
  { sig: 'quote_ident(text)', returns: 'text', call: 'pg_catalog.quote_ident($1)' },
  { sig: 'replace(text, text, text)', returns: 'text', call: 'pg_catalog.replace($1, $2, $3)' },
  { sig: 'left(text, integer)', returns: 'text', call: 'pg_catalog.left($1, $2)' },
  { sig: 'btrim(text)', returns: 'text', call: 'pg_catalog.btrim($1)' },
  { sig: 'octet_length(text)', returns: 'integer', call: 'pg_catalog.octet_length($1)' },
  { sig: 'jsonb_typeof(jsonb)', returns: 'text', call: 'pg_catalog.jsonb_typeof($1)' },
  { sig: 'translate(text, text, text)', returns: 'text', call: 'pg_catalog.translate($1, $2, $3)' },
  { sig: 'pg_sleep(double precision)', returns: 'void', call: 'pg_catalog.pg_sleep($1)', isVoid: true },
  { sig: 'pg_has_role(name, name, text)', returns: 'boolean', call: 'pg_catalog.pg_has_role($1, $2, $3)' },
  { sig: 'pg_xact_status(xid8)', returns: 'text', call: 'pg_catalog.pg_xact_status($1)' },
  { sig: 'quote_literal(text)', returns: 'text', call: 'pg_catalog.quote_literal($1)' },
];

before(async () => {
  logins = await makeLogins('st_shadow', {
    owner: 'NOSUPERUSER NOCREATEROLE',
    tenant: 'IN ROLE steadytext_user',
    worker: 'IN ROLE steadytext_worker',
  });
  await superuser((c) => c.query(`CREATE DATABASE ${DB} OWNER ${logins.names.owner} TEMPLATE template1`));
  url = urlFor(DB);
  su = new pg.Client({ connectionString: url });
  await su.connect();
  // installed by a superuser (as `steadytext migrate` / `up` would be) into the owner's database
  await su.query('CREATE EXTENSION IF NOT EXISTS dblink');
  await migrate(su);
  const u = new URL(serverUrl());
  await su.query(`INSERT INTO steadytext_config (key, value) VALUES ('dblink_connstr', to_jsonb($1::text))`,
    [`host=${u.hostname} port=${u.port} dbname=${DB}`]);
  await su.query('SELECT steadytext_setup_handoff()');

  // the database owner plants its functions in the install schema
  const owner = await logins.as('owner', url);
  await owner.query(`CREATE TABLE public.st_marker (fn text NOT NULL, who name NOT NULL DEFAULT current_user)`);
  await owner.query(`GRANT SELECT, INSERT ON public.st_marker TO PUBLIC`);
  for (const p of PLANTED) {
    const name = p.sig.slice(0, p.sig.indexOf('('));
    const body = p.setof
      ? `RETURN QUERY SELECT ${p.call};`
      : p.isVoid ? `PERFORM ${p.call};` : `RETURN ${p.call};`;
    await owner.query(
      `CREATE FUNCTION public.${p.sig} RETURNS ${p.setof ? 'SETOF ' : ''}${p.returns} LANGUAGE plpgsql AS $f$
       BEGIN
         INSERT INTO public.st_marker (fn) VALUES (${pg.escapeLiteral(p.sig)});
         ${body}
       END $f$`);
  }
});

after(async () => {
  await worker?.stop().catch(() => {});
  await su?.end().catch(() => {});
  await superuser((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  await logins.drop();
});

async function markers(): Promise<string[]> {
  return (await su.query(`SELECT DISTINCT fn FROM public.st_marker ORDER BY 1`)).rows.map((r) => r.fn);
}

test('the planted functions work: unqualified SQL of a session that has public on its path runs them', async () => {
  const tenant = await logins.as('tenant', url);
  await tenant.query(
    `SELECT json_build_object('request_id', gen_random_uuid(), 'function', 'x'::text, 'status', 'y'::text),
            format('%s', 'x'::text)`);
  assert.deepEqual(await markers(), ['format(text, text)', 'json_build_object(text, uuid, text, text, text, text)']);
  await su.query('TRUNCATE public.st_marker');
});

test('a tenant calling every public function, an admin the admin ones and a worker running the jobs run none of them', { timeout: 120_000 }, async () => {
  const tenant = await logins.as('tenant', url);
  worker = await startWorker(testSettings(logins.urlAs('worker', url), { heartbeatTimeout: '5' }));
  const q = async (sql: string, params: unknown[] = []) => one(tenant, sql, params);

  // async functions, batch functions, rerank
  const g = (await q(`SELECT steadytext_generate_async('shadow one', use_cache := false) AS id`)).id;
  const e = (await q(`SELECT steadytext_embed_async('shadow two') AS id`)).id;
  const j = (await q(`SELECT steadytext_generate_json_async('p', '{"type":"object","properties":{"a":{"type":"string"}}}'::jsonb) AS id`)).id;
  const r = (await q(`SELECT steadytext_generate_regex_async('p', '[a-c]{3}') AS id`)).id;
  const ch = (await q(`SELECT steadytext_generate_choice_async('p', ARRAY['yes', 'no']) AS id`)).id;
  const rr = (await q(`SELECT steadytext_rerank_async('cats', ARRAY['cats purr', 'dogs bark']) AS id`)).id;
  const gb = (await q(`SELECT steadytext_generate_batch_async(ARRAY['b1', 'b2'], priority := 1) AS ids`)).ids;
  const eb = (await q(`SELECT steadytext_embed_batch_async(ARRAY['e1', 'e2']) AS ids`)).ids;
  const ids = [g, e, j, r, ch, rr, ...gb, ...eb];
  for (const id of ids) {
    await q(`SELECT steadytext_get_async_result($1, 30) AS r`, [id]);
  }
  assert.equal((await q(`SELECT count(*)::int AS n FROM steadytext_check_async_batch($1::uuid[]) WHERE status = 'completed'`, [ids])).n, ids.length);
  assert.equal((await q(`SELECT count(*)::int AS n FROM steadytext_check_async_batch($1::text[])`, [ids])).n, ids.length);
  assert.equal((await q(`SELECT status FROM steadytext_check_async($1)`, [g])).status, 'completed');
  assert.ok((await q(`SELECT steadytext_embedding($1) AS v`, [e])).v.length > 0);
  // a cache hit, born completed
  const hit = (await q(`SELECT steadytext_embed_async('shadow two') AS id`)).id;
  assert.equal((await q(`SELECT status FROM steadytext_check_async($1)`, [hit])).status, 'completed');
  // cancel and retry
  const slow = (await q(`SELECT steadytext_generate_async('sleep:60000', use_cache := false) AS id`)).id;
  await waitFor('the slow job runs', async () => (await q(`SELECT status FROM steadytext_check_async($1)`, [slow])).status === 'processing');
  assert.equal((await q(`SELECT steadytext_cancel_async($1) AS ok`, [slow])).ok, true);
  const bad = (await q(`SELECT steadytext_generate_async('bad-input:no', use_cache := false) AS id`)).id;
  await waitFor('the bad job fails', async () => (await q(`SELECT status FROM steadytext_check_async($1)`, [bad])).status === 'failed');
  assert.equal((await q(`SELECT steadytext_retry_failed($1) AS ok`, [bad])).ok, true);
  // the request-response hand-off: enqueue and wait in one transaction
  await tenant.query('BEGIN');
  assert.equal((await q(`SELECT steadytext_get_async_result(steadytext_generate_async('in one go', use_cache := false), 30) AS r`)).r, 'echo:in one go');
  await tenant.query('COMMIT');
  // the synchronous functions (cache off: through the hand-off)
  assert.equal((await q(`SELECT steadytext_generate('sync', use_cache := false) AS r`)).r, 'echo:sync');
  await q(`SELECT steadytext_generate_json('p', '{"type":"object"}'::jsonb, use_cache := false) AS r`);
  await q(`SELECT steadytext_generate_regex('p', '[0-9]+', use_cache := false) AS r`);
  await q(`SELECT steadytext_generate_choice('p', ARRAY['a', 'b'], use_cache := false) AS r`);
  assert.ok((await q(`SELECT steadytext_embed('sync text', use_cache := false) AS v`)).v.length > 0);
  assert.equal((await tenant.query(`SELECT * FROM steadytext_rerank('cats', ARRAY['cats purr', 'dogs'], use_cache := false)`)).rows.length, 2);
  // and with the cache
  assert.equal((await q(`SELECT steadytext_generate('sync') AS r`)).r, 'echo:sync');
  assert.equal((await q(`SELECT steadytext_generate('sync') AS r`)).r, 'echo:sync');
  // monitoring and the rest of the surface
  await tenant.query(`SELECT * FROM steadytext_worker_status()`);
  await tenant.query(`SELECT * FROM steadytext_queue_stats()`);
  await tenant.query(`SELECT * FROM steadytext_cache_stats()`);
  await tenant.query(`SELECT * FROM steadytext_limits()`);
  await tenant.query(`SELECT steadytext_cache_key('generate', 'm', '{"prompt":"p","seed":1}'::jsonb)`);
  // bad input goes through the same code
  await tenant.query(`SELECT steadytext_generate_async('')`).catch(() => {});
  await tenant.query(`SELECT steadytext_generate_batch_async(ARRAY['ok', NULL])`).catch(() => {});
  // the admin-only functions, as a superuser session that has public on its path
  await su.query(`SELECT steadytext_dblink_connstr(), steadytext_setup_handoff(), steadytext_cache_evict()`);
  // the worker also evicts and heartbeats; give it a moment of idle work, then stop it cleanly
  await waitFor('worker heartbeats', async () =>
    (await su.query(`SELECT 1 FROM steadytext_workers WHERE worker_id = $1 AND last_heartbeat > now() - interval '1 second'`, [worker!.workerId])).rows.length > 0);
  await worker.stop();
  worker = undefined;
  await su.query(`SELECT steadytext_cache_clear()`);

  assert.deepEqual(await markers(), [], 'planted functions ran inside the schema\'s functions or the worker');
});
