// Any login may NOTIFY steadytext_completed with any payload. completions()
// checks each against its row (read with the client's own rights) before it
// yields: forged, lying, replayed and other tenants' payloads yield nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { SteadyText, type CompletionPayload } from '../../src/client/index.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { makeLogins } from '../security/fixtures.ts';
import { startTestWorker } from '../worker/fixtures/queue.ts';

test('completions() yields only what the rows say, for rows the client may read: a forged, lying or replayed NOTIFY yields nothing', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', () => {});
  const logins = await makeLogins('forged', { alice: 'IN ROLE steadytext_user', mallory: 'IN ROLE steadytext_user' });
  const worker = await startTestWorker(db.url, { concurrency: 2 });
  const alicePool = new pg.Pool({ connectionString: logins.urlAs('alice', db.url), max: 4 });
  const malloryPool = new pg.Pool({ connectionString: logins.urlAs('mallory', db.url), max: 2 });
  const alice = new SteadyText(alicePool);
  const mallory = new SteadyText(malloryPool);
  try {
    const stream = alice.completions();
    await stream.ready;
    const next = async (): Promise<CompletionPayload> => {
      const r = await stream.next();
      assert.equal(r.done, false);
      return r.value!;
    };

    const hanging = await alice.generateAsync('hang', { useCache: false }); // never completes on its own
    const real = await alice.generateAsync('first', { useCache: false });
    assert.deepEqual(await next(), { request_id: real, function: 'generate', status: 'completed' });

    // Mallory's own request completes for real: Alice may not read its row.
    const theirs = await mallory.generateAsync('mallory', { useCache: false });
    await mallory.result(theirs); // completed, and its NOTIFY sent before any below

    const forge = (payload: unknown) => malloryPool.query(`SELECT pg_notify('steadytext_completed', $1)`, [typeof payload === 'string' ? payload : JSON.stringify(payload)]);
    await forge({ request_id: randomUUID(), function: 'generate', status: 'completed' }); // no such request
    await forge({ request_id: hanging, function: 'generate', status: 'completed' }); // a lie: it is still running
    await forge({ request_id: real, function: 'generate', status: 'failed' }); // a lie about a finished one
    await forge({ request_id: real, function: 'embed', status: 'completed' }); // the wrong function
    await forge({ request_id: real, function: 'generate', status: 'completed' }); // a replay of the truth
    await forge({ request_id: theirs, function: 'generate', status: 'completed' }); // another tenant's
    await forge('not json');
    await forge({ request_id: "x' OR true --", function: 'generate', status: 'completed' });

    // A real completion after all of them: the first thing the stream yields.
    const sentinel = await alice.generateAsync('sentinel', { useCache: false });
    assert.deepEqual(await next(), { request_id: sentinel, function: 'generate', status: 'completed' });

    // A real, unforged cancellation still comes through.
    assert.equal(await alice.cancel(hanging), true);
    assert.deepEqual(await next(), { request_id: hanging, function: 'generate', status: 'cancelled' });
    await stream.return();
  } finally {
    await alice.close();
    await mallory.close();
    await worker.stop();
    await alicePool.end();
    await malloryPool.end();
    await logins.drop();
    await db.drop();
  }
});
