// The client's waits survive a lost LISTEN connection: result() reconnects,
// re-checks, and still returns the job's result; completions() ends with the
// connection error rather than hanging (notifications sent while it was away
// cannot be recovered, so it does not pretend to carry on).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SteadyText } from '../../src/client/index.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { startTestWorker, waitFor } from '../worker/fixtures/queue.ts';

async function killListeners(db: { pool: import('pg').Pool }): Promise<number> {
  const r = await db.pool.query(
    `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND query LIKE 'LISTEN steadytext_completed%' AND pid <> pg_backend_pid()`,
  );
  return r.rows[0].n as number;
}

test('result() still returns after its LISTEN connection is terminated mid-wait', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', () => {});
  const worker = await startTestWorker(db.url);
  // No periodic re-check within the test's timeout: only a reconnected LISTEN
  // (or the re-check a reconnect triggers) can deliver the result in time.
  const st = new SteadyText(db.pool, { recheckSeconds: 60 });
  try {
    const id = await st.generateAsync('sleep:1500', { useCache: false });
    const started = Date.now();
    const pending = st.result(id, { timeout: 30 });
    // The wait is listening once its LISTEN backend shows up.
    await waitFor('the client LISTEN connection', async () => (await killListeners(db)) > 0, 5000);
    assert.equal(await pending, 'echo:sleep:1500');
    // Without the reconnect the answer would only come from the last look at
    // the 30 s deadline: a behaviour check with a wide margin, not a timing claim.
    const waited = Date.now() - started;
    assert.ok(waited < 20_000, `answered after ${waited} ms: the wait did not listen again`);
  } finally {
    await st.close();
    await worker.stop();
    await db.drop();
  }
});

test('completions() ends with an error when its connection is terminated, instead of hanging', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', () => {});
  const st = new SteadyText(db.pool);
  try {
    const stream = st.completions();
    await stream.ready;
    const consumed = (async () => {
      for await (const done of stream) void done;
    })();
    const outcome = consumed.then(
      () => new Error('the loop ended without an error'),
      (err: Error) => err,
    );
    assert.ok((await killListeners(db)) > 0, 'a LISTEN backend to terminate');
    assert.match((await outcome).message, /terminat/i);
  } finally {
    await st.close();
    await db.drop();
  }
});
