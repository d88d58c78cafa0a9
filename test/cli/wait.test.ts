// `steadytext wait`: one line per id as results land, already-finished ids
// included; exit 0 / 1 / 4.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { startTestWorker, waitFor } from '../worker/fixtures/queue.ts';
import { runCli, startCli } from './fixtures/cli.ts';

// db.drop() ends the pool, then DROP DATABASE ... WITH (FORCE): a backend still closing
// reports 57P01 to its (removed) client, which the pool re-emits; without a listener
// that would be an uncaught exception in whichever test runs next.
const ignoreDropError = () => {};

async function sql<T = string>(db: { pool: import('pg').Pool }, text: string): Promise<T> {
  return (await db.pool.query(text)).rows[0].v as T;
}

test('wait prints each result as it lands and exits 0 when all completed', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  let worker = await startTestWorker(db.url, { concurrency: 2 });
  try {
    const done = await sql(db, `SELECT steadytext_generate_async('already', use_cache := false) AS v`);
    await waitFor('first done', async () => (await sql(db, `SELECT status AS v FROM steadytext_queue WHERE request_id = '${done}'`)) === 'completed');
    await worker.stop();
    // No worker while the command starts: the finished id must print at once, the others only as they land.
    const slow = await sql(db, `SELECT steadytext_generate_async('sleep:1500', use_cache := false) AS v`);
    const fast = await sql(db, `SELECT steadytext_generate_async(E'sleep:200 two\\nlines', use_cache := false) AS v`);
    const cli = startCli(['wait', slow, fast, done, '--timeout', '30'], { DATABASE_URL: db.url });
    await waitFor('the already-finished id printed', async () => cli.stdout().includes(done), 20_000);
    assert.equal(cli.stdout(), `${done}\tcompleted\techo:already\n`);
    worker = await startTestWorker(db.url, { concurrency: 2 });
    const r = await cli.result;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trimEnd().split('\n'), [
      `${done}\tcompleted\techo:already`,
      `${fast}\tcompleted\techo:sleep:200 two\\nlines`,
      `${slow}\tcompleted\techo:sleep:1500`,
    ], 'in the order they finished, one line each');
  } finally {
    await worker.stop();
    await db.drop();
  }
});

test('wait --json: one object per id with the typed result; failed / cancelled / not_found exit 1', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const worker = await startTestWorker(db.url, { maxRetries: '0' });
  try {
    const embed = await sql(db, `SELECT steadytext_embed_async('vector me') AS v`);
    const json = await sql(db, `SELECT steadytext_generate_json_async('p', '{"type":"object"}') AS v`);
    const failed = await sql(db, `SELECT steadytext_generate_async('throw:out of tokens', use_cache := false) AS v`);
    const cancelled = await sql(db, `SELECT steadytext_generate_async('hang', use_cache := false, priority := -1) AS v`);
    await db.pool.query(`SELECT steadytext_cancel_async($1)`, [cancelled]);
    const unknown = '00000000-0000-0000-0000-00000000abcd';
    const r = await runCli(['wait', embed, json, failed, cancelled, unknown, '--json', '--timeout', '20'], { DATABASE_URL: db.url });
    assert.equal(r.code, 1, r.stderr);
    const out = new Map(
      r.stdout.trimEnd().split('\n').map((l) => {
        const o = JSON.parse(l);
        return [o.request_id, o];
      }),
    );
    assert.equal(out.size, 5);
    const e = out.get(embed);
    assert.deepEqual(Object.keys(e), ['request_id', 'function', 'status', 'result', 'error']);
    assert.equal(e.function, 'embed');
    assert.equal(e.status, 'completed');
    assert.ok(Array.isArray(e.result) && e.result.length === 4);
    assert.deepEqual(out.get(json).result, { echo: 'p' });
    assert.equal(out.get(failed).status, 'failed');
    assert.match(out.get(failed).error, /out of tokens/);
    assert.equal(out.get(cancelled).status, 'cancelled');
    assert.deepEqual(out.get(unknown), { request_id: unknown, function: null, status: 'not_found', result: null, error: null });

    const one = await runCli(['wait', failed], { DATABASE_URL: db.url });
    assert.equal(one.code, 1);
    assert.match(one.stdout, new RegExp(`^${failed}\tfailed\t.*out of tokens`));
  } finally {
    await worker.stop();
    await db.drop();
  }
});

test('wait --timeout exits 4 and lists what is unfinished; bad ids exit 2', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  try {
    const pending = await sql(db, `SELECT steadytext_generate_async('nobody runs this') AS v`);
    const t0 = Date.now();
    const r = await runCli(['wait', pending, '--timeout', '0.5'], { DATABASE_URL: db.url });
    assert.equal(r.code, 4);
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(r.stdout, `${pending}\tpending\t\ttimed out after 0.5 s\n`);
    assert.match(r.stderr, /1 of 1 requests still unfinished after 0.5 s/);

    const j = await runCli(['wait', pending, '--timeout', '0.2', '--json'], { DATABASE_URL: db.url });
    assert.equal(j.code, 4);
    assert.deepEqual(JSON.parse(j.stdout), {
      request_id: pending,
      function: 'generate',
      status: 'pending',
      result: null,
      error: null,
      timed_out: true,
    });

    const bad = await runCli(['wait', 'not-a-uuid'], { DATABASE_URL: db.url });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not a request id/);
  } finally {
    await db.drop();
  }
});
