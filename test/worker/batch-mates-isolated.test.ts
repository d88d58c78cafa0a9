// Issue 20, item 7: embed jobs of different tenants share one engine call,
// and one text the engine refuses (longer than the embedding model's context,
// within max_prompt_bytes) must not decide anyone else's outcome. Each run
// below puts two tenants' texts and one over-long text of the second tenant
// in one engine.embed call, and checks that the others complete on their
// first attempt with the vectors they get alone, and that only the refused
// text's job fails: at once, with its own error.
// Engines: the scripted test engine, the local engine on the tiny models, and
// llama-server over HTTP (skips, saying why, without a llama-server binary).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Engine } from '../../src/engine/types.ts';
import { HttpEngine } from '../../src/engine/httpEngine.ts';
import { vectorText } from '../../src/worker/execute.ts';
import { createScriptedEngine } from '../helpers/scriptedEngine.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { makeLogins, type Logins } from '../security/fixtures.ts';
import { findLlamaServer, LlamaServer, proxyPool } from '../engine/httpServers.ts';
import { tinyEngine } from '../engine/tinyEngine.ts';
import { startTestWorker, waitFor } from './fixtures/queue.ts';

let db: TestDatabase;
let logins: Logins;

before(async () => {
  db = await createTestDatabase();
  logins = await makeLogins('st_bm', { alice: 'IN ROLE steadytext_user', bob: 'IN ROLE steadytext_user' });
});

after(async () => {
  await db.drop();
  await logins.drop();
});

/** `engine`, with the inputs of every embed call it gets recorded. */
function recording(engine: Engine): { engine: Engine; calls: string[][] } {
  const calls: string[][] = [];
  const wrapped: Engine = Object.create(engine);
  wrapped.embed = (texts, opts) => {
    calls.push(texts);
    return engine.embed(texts, opts);
  };
  return { engine: wrapped, calls };
}

/** Words the tiny models' tokenizers take about one token per byte of: `bytes` bytes of them. */
function longText(bytes: number, seed: string): string {
  let s = seed;
  for (let i = 0; s.length < bytes; i++) s += ` w${i % 97}`;
  return s.slice(0, bytes);
}

interface Run {
  /** The refused text's job. */
  bad: Record<string, any>;
  /** The other jobs, with the text each was enqueued with. */
  good: Array<{ text: string; row: Record<string, any> }>;
  /** Inputs of each engine.embed call the worker made. */
  calls: string[][];
}

/**
 * alice enqueues `aliceTexts`, bob `bobText` and then `bad`, interleaved, as
 * their own roles; one worker (concurrency 1, a claim large enough for all of
 * them, retries allowed) runs them on `engine` until all have ended.
 */
async function mixedBatch(engine: Engine, aliceTexts: string[], bobText: string, bad: string): Promise<Run> {
  const alice = await logins.as('alice', db.url);
  const bob = await logins.as('bob', db.url);
  const enqueue = async (c: typeof alice, text: string) =>
    (await c.query(`SELECT steadytext_embed_async($1, use_cache := false) AS id`, [text])).rows[0].id as string;
  const byId = new Map<string, string>();
  byId.set(await enqueue(alice, aliceTexts[0]), aliceTexts[0]);
  const badId = await enqueue(bob, bad);
  for (const t of aliceTexts.slice(1)) byId.set(await enqueue(alice, t), t);
  byId.set(await enqueue(bob, bobText), bobText);
  const ids = [badId, ...byId.keys()];
  const rec = recording(engine);
  const worker = await startTestWorker(
    db.url,
    { concurrency: 1, prefetch: 16, embedBatchSize: 16, maxRetries: 2, retryBackoff: '0.05' },
    { engine: rec.engine },
  );
  try {
    const rows = await waitFor(
      'every job ended',
      async () => {
        const r = await db.pool.query(`SELECT * FROM steadytext_queue WHERE request_id = ANY($1::uuid[])`, [ids]);
        return r.rows.every((x) => x.status === 'completed' || x.status === 'failed') ? new Map(r.rows.map((x) => [x.request_id, x])) : null;
      },
      120_000,
    );
    // The owners are two roles, and the refused text shared an engine call with both.
    assert.deepEqual(new Set([...rows.values()].map((r) => r.owner_role)), new Set([logins.names.alice, logins.names.bob]));
    assert.ok(
      rec.calls[0].includes(bad) && rec.calls[0].includes(aliceTexts[0]) && rec.calls[0].includes(bobText),
      `the first engine call held every tenant's texts (calls of ${rec.calls.map((c) => c.length).join(', ')} texts)`,
    );
    return {
      bad: rows.get(badId),
      good: [...byId].map(([id, text]) => ({ text, row: rows.get(id) })),
      calls: rec.calls,
    };
  } finally {
    await worker.stop();
    await alice.end();
    await bob.end();
  }
}

/** What the issue requires of a run: `expectError` is the refused job's own error. */
async function assertIsolated(run: Run, engine: Engine, expectError: RegExp): Promise<void> {
  assert.equal(run.bad.status, 'failed');
  assert.match(run.bad.error, expectError);
  assert.equal(run.bad.retry_count, 0, 'refused input fails at once, no retry');
  assert.equal(run.bad.attempt, 1, 'one claim only');
  for (const { text, row } of run.good) {
    assert.equal(row.status, 'completed', `${text.slice(0, 30)}: ${row.error}`);
    assert.equal(row.error, null, "no error text on the others' rows");
    assert.equal(row.retry_count, 0, 'no attempt lost');
    assert.equal(row.attempt, 1, 'completed under its first claim');
    const [alone] = await engine.embed([text]);
    assert.equal(row.result, vectorText(alone), 'the vector it gets alone');
  }
}

test('scripted engine: a call refused for one text is split; the others complete on their first attempt, only that text fails, with its own error', async () => {
  const engine = createScriptedEngine();
  const bad = 'refuse:bob secret';
  const run = await mixedBatch(engine, ['alice one', 'alice two', 'alice three'], 'bob one', bad);
  await assertIsolated(run, engine, /^the engine refuses the text "refuse:bob secret"$/);
  // Split by halves, never a call per job from the start: the refused call, then
  // each half of it, and so on down to the refused text alone.
  assert.equal(run.calls[0].length, 5);
  assert.ok(run.calls.some((c) => c.length === 1 && c[0] === bad));
  assert.ok(run.calls.length <= 1 + 2 * Math.ceil(Math.log2(5)), `${run.calls.length} calls`);
});

test("local engine (tiny models): a text longer than the embedding model's context fails alone, at once; the others get their own vectors", async () => {
  const engine = await tinyEngine();
  try {
    const bad = longText(6000, 'bob over the context');
    const run = await mixedBatch(engine, ['alice one', 'alice two'], 'bob one', bad);
    await assertIsolated(run, engine, /^the text is too long for the embedding model: \d+ tokens, at most 4095 fit its context$/);
  } finally {
    await engine.dispose();
  }
});

const found = findLlamaServer();
describe('llama-server over HTTP', { skip: found.path ? false : `llama-server not available: ${found.reason}` }, () => {
  let server: LlamaServer;
  const proxies = proxyPool();
  before(async () => {
    server = await LlamaServer.start(found.path!, 'embedding');
  });
  after(async () => {
    await proxies.stopAll();
    await server?.kill();
  });

  test('HTTP 500 "input is too large to process" (the real answer, longer than the physical batch): the refused text fails alone, at once; the others get their own vectors', async () => {
    const engine = await HttpEngine.connect({ embedding: server.backend({ retries: 2 }) });
    const run = await mixedBatch(engine, ['alice one', 'alice two'], 'bob one', longText(3000, 'bob over the context'));
    await assertIsolated(run, engine, /: HTTP 500: input \(\d+ tokens\) is too large to process/);
  });

  test('HTTP 400 (llama-server\'s answer to a text over the context of a slot): the refused text fails alone, at once; the others get their own vectors', async () => {
    // llama-server gives this 400 only where a slot's context is smaller than
    // the physical batch (-np 2 and more), where batched vectors differ from
    // lone ones; so the proxy gives its exact answer, in front of the
    // one-slot server, to any request holding a text over 2048 bytes.
    const p = await proxies.proxy(server);
    p.answer = ({ path, body }) => {
      if (path !== '/v1/embeddings') return undefined;
      const long = (JSON.parse(body).input as string[]).find((t) => t.length > 2048);
      if (long === undefined) return undefined;
      const error = { code: 400, message: `request (${long.length} tokens) exceeds the available context size (2048 tokens), try increasing it`, type: 'exceed_context_size_error', n_prompt_tokens: long.length, n_ctx: 2048 };
      return { kind: 'status', status: 400, body: JSON.stringify({ error }) };
    };
    const engine = await HttpEngine.connect({ embedding: server.backend({ url: p.url, retries: 2 }) });
    const bad = longText(3000, 'bob over the context');
    const run = await mixedBatch(engine, ['alice one', 'alice two'], 'bob one', bad);
    await assertIsolated(run, engine, /: HTTP 400: request \(3000 tokens\) exceeds the available context size \(2048 tokens\)/);
    const refusals = p.requests.filter((r) => r.path === '/v1/embeddings' && r.body.includes('bob over the context'));
    assert.ok(refusals.length >= 2 && JSON.parse(refusals[0].body).input.length === 4, 'the 400 came first for the whole batch, then for its halves');
  });
});
