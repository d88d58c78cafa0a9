// Whatever a result, an error or a worker id holds, the CLI prints no control
// character raw (a terminal would obey it: clear the screen, retitle the
// window, ring, overwrite the line), and the tiny test models' output is
// labelled as test output where `steadytext wait` shows it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { startTestWorker } from '../worker/fixtures/queue.ts';
import { runCli } from './fixtures/cli.ts';

const ignoreDropError = () => {};

/** Characters a terminal acts on, other than the newline and tab that end and separate `wait`'s lines. */
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

test('steadytext wait on the tiny models: control characters in the result are escaped, and the output is labelled as test output', { timeout: 120_000 }, async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const worker = await startTestWorker(db.url, { engineModule: '', models: 'tiny', threads: 1 });
  try {
    const env = { DATABASE_URL: db.url };
    const enqueued = await runCli(['enqueue', 'generate', 'Write a poem about databases', '--max-tokens', '32'], env);
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const id = enqueued.stdout.trim();
    const r = await runCli(['wait', id, '--timeout', '90'], env, 120_000);
    assert.equal(r.code, 0, r.stderr);
    const raw = (await db.pool.query(`SELECT result FROM steadytext_queue WHERE request_id = $1`, [id])).rows[0].result as string;
    assert.match(raw, RAW_CONTROL, 'the tiny model wrote control characters (what this test is about)');
    const [line, ...rest] = r.stdout.split('\n');
    assert.deepEqual(rest, [''], 'one line');
    assert.doesNotMatch(line, RAW_CONTROL);
    const escaped = line.split('\t')[2];
    assert.ok(escaped.includes('\\x'), `escaped as \\xNN: ${escaped}`);
    assert.match(r.stderr, /note: results of tiny-generation-v\d+-seed\d+ \(the tiny test set\): TEST MODELS: .*not real text/);

    // --json: the exact value (JSON escapes), labelled the same way, on stderr.
    const j = await runCli(['wait', id, '--json'], env);
    assert.equal(j.code, 0, j.stderr);
    assert.doesNotMatch(j.stdout.trimEnd(), RAW_CONTROL);
    assert.equal(JSON.parse(j.stdout).result, raw);
    assert.match(j.stderr, /TEST MODELS/);
  } finally {
    await worker.stop();
    await db.drop();
  }
});

test('escape sequences in a result, an error, a worker id or an argument reach no terminal raw', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const env = { DATABASE_URL: db.url };
  // ESC ] (window title) ... BEL, ESC [2J (clear screen), CR, C1 CSI, right-to-left override
  const nasty = 'ok\u001b]0;pwned\u0007\u001b[2J\rover\u009b31m\u202eevil';
  try {
    const [done, failed] = (
      await db.pool.query(`SELECT steadytext_generate_async('a', use_cache := false) AS id UNION ALL SELECT steadytext_generate_async('b', use_cache := false)`)
    ).rows.map((row) => row.id as string);
    await db.pool.query(
      `UPDATE steadytext_queue SET status = 'completed', result = $2, completed_at = now() WHERE request_id = $1`,
      [done, nasty],
    );
    await db.pool.query(
      `UPDATE steadytext_queue SET status = 'failed', error = $2, completed_at = now(), failed_at = now() WHERE request_id = $1`,
      [failed, `engine said: ${nasty}`],
    );
    await db.pool.query(
      `INSERT INTO steadytext_workers (worker_id, host, pid) VALUES ($1, $1, 1)`,
      [`worker-${nasty}`],
    );

    const text = await runCli(['wait', done, failed], env);
    assert.equal(text.code, 1, text.stderr);
    assert.doesNotMatch(text.stdout.replaceAll('\t', '').replaceAll('\n', ''), RAW_CONTROL);
    assert.ok(text.stdout.includes(`${done}\tcompleted\tok\\x1b]0;pwned\\x07\\x1b[2J\\rover\\x9b31m\\u202eevil\n`), text.stdout);
    assert.ok(text.stdout.includes(`${failed}\tfailed\tengine said: ok\\x1b]0;pwned`), text.stdout);

    const json = await runCli(['wait', done, '--json'], env);
    assert.doesNotMatch(json.stdout.trimEnd(), RAW_CONTROL);
    assert.equal(JSON.parse(json.stdout).result, nasty, 'the exact value, JSON-escaped');

    for (const args of [['status'], ['status', '--json']]) {
      const s = await runCli(args, env);
      assert.equal(s.code, 0, s.stderr);
      assert.doesNotMatch(s.stdout.replaceAll('\n', ''), RAW_CONTROL, args.join(' '));
      assert.ok(s.stdout.includes('worker-ok'), s.stdout);
    }

    const usage = await runCli(['wait', `not-an-id${nasty}`], env);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^steadytext: not a request id \(UUID\): not-an-idok\\x1b\]0;pwned/);
    assert.doesNotMatch(usage.stderr.trimEnd(), RAW_CONTROL);
  } finally {
    await db.drop();
  }
});
