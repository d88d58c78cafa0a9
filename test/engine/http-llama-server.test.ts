// The HTTP engine against a real llama.cpp llama-server serving the tiny
// models (not a mock): every job type it can serve, batched embeddings, rerank,
// grammar-constrained output, and the faults a real deployment meets (429/500
// answers, a slow server, the server killed mid-job), through the engine
// alone and through a worker on a real database. A small proxy in front of the
// real server scripts the fault answers and counts requests.
// Skips, saying why, when no llama-server binary is available
// (.ci/llama-server.sh builds and caches one; CI runs it first).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpEngine, RoutedEngine } from '../../src/engine/httpEngine.ts';
import { HttpBackendError } from '../../src/engine/httpClient.ts';
import { EngineInputError, type Engine } from '../../src/engine/types.ts';
import { tinyModelFileName } from '../../src/engine/tinyModels.ts';
import { Worker, resolveSettings, type WorkerFlags } from '../../src/worker/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { enqueue, row, waitFor } from '../worker/fixtures/queue.ts';
import { compareConstrained, CONSTRAINED, findLlamaServer, LlamaServer, proxyPool } from './httpServers.ts';
import { tinyEngine } from './tinyEngine.ts';

const found = findLlamaServer();
const skip = found.path ? false : `llama-server not available: ${found.reason}`;
const opts = (maxTokens = 24, seed = 42) => ({ maxTokens, seed });
/** The most two llama.cpp builds' embeddings of the test's texts may differ: docs/engine.md, "How close two builds must be". */
const CROSS_BUILD_EMBED = { maxAbs: 3e-4, oneMinusCos: 4e-7 };

const { regex: REGEX, choices: CHOICES, schema: SCHEMA } = CONSTRAINED;
const PROMPTS = ['hello', 'the queue must lose nothing', 'classify: great product', 'write an id', 'json please'];

describe('HTTP engine against llama-server on the tiny models', { skip }, () => {
  let gen: LlamaServer;
  let emb: LlamaServer;
  let rer: LlamaServer;
  let local: Engine;
  const proxies = proxyPool();
  const proxy = proxies.proxy;

  before(async () => {
    [gen, emb, rer] = await Promise.all([
      LlamaServer.start(found.path!, 'generation'),
      LlamaServer.start(found.path!, 'embedding'),
      LlamaServer.start(found.path!, 'reranking'),
    ]);
    local = await tinyEngine();
  });

  after(async () => {
    await proxies.stopAll();
    await Promise.all([gen?.kill(), emb?.kill(), rer?.kill()]);
    await local?.dispose();
  });

  test('model ids name the backend and the model the server reports (generation: and the prompt shape), never the local ids', async () => {
    const e = await HttpEngine.connect({ generation: gen.backend(), embedding: emb.backend(), reranking: rer.backend() });
    for (const role of ['generation', 'embedding', 'reranking'] as const) {
      // The tiny generation model has no chat template: the raw prompt (test/engine/http-chat.test.ts has one with a template).
      assert.equal(e.modelId(role), `llama-server:${tinyModelFileName(role)}${role === 'generation' ? '#raw' : ''}`);
      assert.notEqual(e.modelId(role), local.modelId(role));
    }
    // A configured model the server does not list is refused at start, naming what it does list.
    await assert.rejects(
      HttpEngine.connect({ embedding: emb.backend({ model: 'no-such-model' }) }),
      /does not serve model 'no-such-model' \(it lists: .*steadytext-tiny-embedding/,
    );
    // Roles without a server stay local.
    const routed = new RoutedEngine(await HttpEngine.connect({ embedding: emb.backend() }), local);
    assert.equal(routed.modelId('generation'), local.modelId('generation'));
    assert.equal(routed.modelId('embedding'), `llama-server:${tinyModelFileName('embedding')}`);
  });

  test("embed: a whole batch in one request (split at the batch size); vectors L2-normalised and within the cross-build bound of the local engine's", async () => {
    const p = await proxy(emb);
    const texts = ['alpha', 'beta gamma', 'a longer sentence about queues', 'δέλτα', 'ε', 'zeta eta theta'];
    const e = await HttpEngine.connect({ embedding: emb.backend({ url: p.url }) });
    p.requests.length = 0;
    const vectors = await e.embed(texts);
    const calls = p.requests.filter((r) => r.path === '/v1/embeddings');
    assert.equal(calls.length, 1);
    assert.deepEqual(JSON.parse(calls[0].body).input, texts);
    // Two builds (node-llama-cpp's prebuilt binary, this llama-server) run
    // other CPU kernels: equal only within what llama.cpp's float16 attention
    // lets two builds differ on these texts, derived in docs/engine.md ("How
    // close two builds must be"): max-abs and cosine.
    const mine = await local.embed(texts);
    let maxDiff = 0;
    let minCos = 1;
    vectors.forEach((v, i) => {
      assert.equal(v.length, mine[i].length);
      assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-9, 'unit length');
      let dot = 0;
      v.forEach((x, j) => {
        maxDiff = Math.max(maxDiff, Math.abs(x - mine[i][j]));
        dot += x * mine[i][j];
      });
      minCos = Math.min(minCos, dot);
    });
    console.log(`embeddings: llama-server vs local engine, largest component difference ${maxDiff.toExponential(2)}, 1 - cosine ${(1 - minCos).toExponential(2)} (worst text)`);
    assert.ok(maxDiff <= CROSS_BUILD_EMBED.maxAbs, `llama-server and the local engine differ by ${maxDiff} in a component`);
    assert.ok(1 - minCos <= CROSS_BUILD_EMBED.oneMinusCos, `llama-server and the local engine: 1 - cosine ${1 - minCos}`);

    // Measured, not asserted: the same server with 4 slots decodes the request's texts side by side.
    const slots4 = await LlamaServer.start(found.path!, 'embedding', ['-np', '4']);
    try {
      const batched = await (await HttpEngine.connect({ embedding: slots4.backend() })).embed(texts);
      let d = 0;
      batched.forEach((v, i) => v.forEach((x, j) => (d = Math.max(d, Math.abs(x - mine[i][j])))));
      console.log(`embeddings: llama-server -np 4, one request of ${texts.length} texts vs the local engine: largest difference ${d.toExponential(2)}`);
    } finally {
      await slots4.kill();
    }

    const small = await HttpEngine.connect({ embedding: emb.backend({ url: p.url, embedBatchSize: 4 }) });
    p.requests.length = 0;
    assert.deepEqual(await small.embed(texts), vectors);
    assert.deepEqual(
      p.requests.filter((r) => r.path === '/v1/embeddings').map((r) => JSON.parse(r.body).input.length),
      [4, 2],
    );
  });

  test('rerank: every document scored once, best first, the task in front of the query', async () => {
    const p = await proxy(rer);
    const e = await HttpEngine.connect({ reranking: rer.backend({ url: p.url }) });
    const docs = ['the cat sat', 'queues in postgres', 'a recipe for bread', 'workers claim jobs'];
    const ranked = await e.rerank('how do workers claim jobs from a queue', docs, 'Given a web search query, retrieve relevant passages that answer the query');
    assert.deepEqual(ranked.map((r) => r.index).sort(), [0, 1, 2, 3]);
    for (const r of ranked) assert.equal(r.document, docs[r.index]);
    for (let i = 1; i < ranked.length; i++) assert.ok(ranked[i - 1].score >= ranked[i].score);
    const sent = JSON.parse(p.requests.at(-1)!.body);
    assert.equal(sent.query, 'how do workers claim jobs from a queue');
    await e.rerank('q', docs, 'Find recipes');
    assert.equal(JSON.parse(p.requests.at(-1)!.body).query, 'Find recipes\nq');
    const mine = await local.rerank('how do workers claim jobs from a queue', docs, 'Given a web search query, retrieve relevant passages that answer the query');
    const sameOrder = ranked.map((r) => r.index).join() === mine.map((r) => r.index).join();
    console.log(
      `rerank: llama-server order ${ranked.map((r) => r.index)} scores ${ranked.map((r) => r.score.toFixed(3))}; ` +
        `local order ${mine.map((r) => r.index)} scores ${mine.map((r) => r.score.toFixed(3))}; same order: ${sameOrder}`,
    );
  });

  test('grammar-constrained regex, choice and JSON output validates; compared with the local engine on the same GGUF', async () => {
    const p = await proxy(gen);
    const e = await HttpEngine.connect({ generation: gen.backend({ url: p.url }) });
    const { same, total, differing } = await compareConstrained(e, local, PROMPTS);
    const sent = p.requests.filter((r) => r.path === '/completion').map((r) => JSON.parse(r.body));
    assert.equal(sent.length, PROMPTS.length * 3);
    for (const body of sent) {
      // No chat template: the prompt's tokens between empty template parts (the server adds BOS for the leading string).
      assert.ok(Array.isArray(body.prompt) && body.prompt[0] === '' && body.prompt.at(-1) === '', JSON.stringify(body.prompt));
      assert.equal(body.cache_prompt, false);
      assert.equal(body.temperature, 0);
      assert.equal(body.top_k, 1);
      assert.equal(typeof body.grammar, 'string');
    }
    console.log(`constrained generation: llama-server equals the local engine in ${same} of ${total} outputs; differing: ${differing.join('; ')}`);
    // The same requests all at once (the server's 4 slots decode them in shared batches) vs one at a time.
    const alone = [];
    for (const [i, prompt] of PROMPTS.entries()) alone.push(await e.generateRegex(prompt, REGEX, opts(24, 42 + i)));
    const together = await Promise.all(PROMPTS.map((prompt, i) => e.generateRegex(prompt, REGEX, opts(24, 42 + i))));
    const differ = alone.filter((a, i) => a !== together[i]).length;
    console.log(`constrained generation: ${differ} of ${PROMPTS.length} outputs differ between one at a time and all at once`);
    // Same server, same request: the same answer.
    assert.equal(await e.generateRegex(PROMPTS[0], REGEX, opts(24, 42)), await e.generateRegex(PROMPTS[0], REGEX, opts(24, 42)));
  });

  test("unconstrained generation: llama-server's HTTP 500 on the tiny model's non-UTF-8 bytes is a clear error, not retried", async () => {
    const p = await proxy(gen);
    const e = await HttpEngine.connect({ generation: gen.backend({ url: p.url, retries: 3 }) });
    p.requests.length = 0;
    await assert.rejects(e.generate('hello', opts(16)), (err: Error) => {
      assert.ok(err instanceof HttpBackendError, String(err));
      assert.match(err.message, /HTTP 500: .*does not match the expected.*not valid UTF-8/);
      return true;
    });
    assert.equal(p.requests.filter((r) => r.path === '/completion').length, 1, 'a deterministic failure is not retried');
  });

  test('429 and 500 answers: backoff, then success; exhausted retries fail with the server text', async () => {
    const p = await proxy(emb);
    const e = await HttpEngine.connect({ embedding: emb.backend({ url: p.url, retries: 2, retryBackoffMs: 20 }) });
    p.requests.length = 0;
    p.script.push(
      { kind: 'status', status: 429, body: '{"error":{"message":"slow down"}}', headers: { 'retry-after': '0' } },
      { kind: 'status', status: 503, body: '{"error":"loading model"}' },
    );
    const [v] = await e.embed(['retry me']);
    assert.equal(v.length, 64);
    assert.equal(p.requests.length, 3, 'two refusals, then the real answer');

    p.script.push(...Array.from({ length: 3 }, () => ({ kind: 'status' as const, status: 500, body: '{"error":{"message":"proxy: overloaded"}}' })));
    await assert.rejects(e.embed(['give up']), /llama-server at .* POST \/v1\/embeddings: HTTP 500: proxy: overloaded \(after 3 attempts\)/);

    // A client error is not retried and is not a transient failure.
    p.requests.length = 0;
    p.script.push({ kind: 'status', status: 400, body: '{"error":{"message":"bad input"}}' });
    await assert.rejects(e.embed(['bad']), (err: Error) => err instanceof EngineInputError && /HTTP 400: bad input/.test(err.message));
    assert.equal(p.requests.length, 1);
  });

  test('a request timeout drops the request and names the limit', async () => {
    const p = await proxy(emb);
    const e = await HttpEngine.connect({ embedding: emb.backend({ url: p.url, retries: 0, timeoutMs: 300 }) });
    p.script.push({ kind: 'hold' });
    await assert.rejects(e.embed(['slow']), /no answer within 0.3 s \(after 1 attempt\)/);
    await waitFor('the proxy saw the client go away', async () => p.aborted >= 1);
    p.release();
  });

  test('doctor: each configured server reachable, its model, the job types it serves', async () => {
    const { serverChecks } = await import('../../src/cli/commands/doctorServers.ts');
    const checks = await serverChecks({ generationServer: gen.url, embeddingServer: emb.url, rerankingServer: rer.url }, {});
    assert.deepEqual(checks.map((c) => [c.name, c.status]), [
      ['generation server', 'ok'],
      ['embedding server', 'ok'],
      ['reranking server', 'ok'],
    ]);
    assert.equal(
      checks[0].message,
      `llama-server at ${gen.url} serves llama-server:${tinyModelFileName('generation')}#raw; job types: generate, generate_json, generate_regex, generate_choice`,
    );
    assert.match(checks[2].message, /job types: rerank$/);
  });

  describe('through a worker on a real database', () => {
    let db: TestDatabase;
    const workers: Worker[] = [];
    const startWorker = async (flags: WorkerFlags) => {
      const w = new Worker(
        resolveSettings(
          {
            databaseUrl: db.url,
            models: 'tiny',
            pollInterval: '0.5',
            heartbeatInterval: '0.25',
            heartbeatTimeout: '1',
            retryBackoff: '0.2',
            shutdownGrace: '5',
            serverRetryBackoff: '0.05',
            ...flags,
          },
          {},
          {},
        ),
      );
      await w.start();
      workers.push(w);
      return w;
    };
    before(async () => {
      db = await createTestDatabase();
    });
    after(async () => {
      for (const w of workers) await w.stop();
      await db?.drop();
    });

    test('every job type it can serve completes and validates; embed jobs share one request; cache rows carry the server model id', async () => {
      const embProxy = await proxy(emb);
      const w = await startWorker({
        concurrency: 8,
        maxRetries: 0,
        generationServer: gen.url,
        embeddingServer: embProxy.url,
        rerankingServer: rer.url,
      });
      assert.equal(w.models.generation, `llama-server:${tinyModelFileName('generation')}#raw`);
      const q = (sql: string, args: unknown[] = []) => db.pool.query(sql, args);
      const texts = ['one', 'two', 'three', 'four', 'five', 'six'];
      embProxy.requests.length = 0;
      const embedIds: string[] = (await q(`SELECT steadytext_embed_batch_async($1::text[]) AS ids`, [texts])).rows[0].ids;
      const [regex, choice, json, rerank, plain] = [
        (await q(`SELECT steadytext_generate_regex_async('an id', $1, 24) AS id`, [REGEX])).rows[0].id,
        (await q(`SELECT steadytext_generate_choice_async('sentiment?', $1::text[], 24) AS id`, [CHOICES])).rows[0].id,
        (await q(`SELECT steadytext_generate_json_async('a person', $1::jsonb, 64) AS id`, [JSON.stringify(SCHEMA)])).rows[0].id,
        (await q(`SELECT steadytext_rerank_async('queues', ARRAY['a queue','a cat','a worker']) AS id`)).rows[0].id,
        (await q(`SELECT steadytext_generate_async('hello', 16) AS id`)).rows[0].id,
      ];
      const all = [...embedIds, regex, choice, json, rerank, plain];
      await waitFor('every job finished', async () => {
        const r = await q(`SELECT count(*)::int AS n FROM steadytext_queue WHERE request_id = ANY($1) AND status IN ('completed','failed')`, [all]);
        return r.rows[0].n === all.length;
      }, 60_000);
      for (const id of [...embedIds, regex, choice, json, rerank]) assert.equal((await row(db.pool, id)).status, 'completed', id);
      assert.match((await row(db.pool, regex)).result, /^[a-z]{3}-[0-9]{2}$/);
      assert.ok(CHOICES.includes((await row(db.pool, choice)).result));
      const doc = JSON.parse((await row(db.pool, json)).result);
      assert.equal(typeof doc.name, 'string');
      assert.equal(typeof doc.ok, 'boolean');
      const ranked = JSON.parse((await row(db.pool, rerank)).result);
      assert.deepEqual(ranked.map((r: { index: number }) => r.index).sort(), [0, 1, 2]);
      for (const id of embedIds) {
        const v = JSON.parse((await row(db.pool, id)).result) as number[];
        assert.equal(v.length, 64);
      }
      const inputs = embProxy.requests.filter((r) => r.path === '/v1/embeddings').map((r) => JSON.parse(r.body).input.length);
      assert.ok(inputs.length < texts.length && Math.max(...inputs) > 1, `embed requests carried ${inputs} texts`);
      // Unconstrained generation on the tiny model: failed, saying why.
      const failed = await row(db.pool, plain);
      assert.equal(failed.status, 'failed');
      assert.match(failed.error, /not valid UTF-8/);
      // Cache keys and cached rows name the server's model, not the local one.
      const models = await q(`SELECT DISTINCT model_id FROM steadytext_queue WHERE request_id = ANY($1) ORDER BY 1`, [all]);
      assert.deepEqual(
        models.rows.map((r) => r.model_id),
        ['embedding', 'generation', 'reranking'].map((role) => `llama-server:${tinyModelFileName(role as 'generation')}${role === 'generation' ? '#raw' : ''}`).sort(),
      );
      const cached = await q(`SELECT DISTINCT model_id FROM steadytext_cache`);
      assert.ok(cached.rows.length > 0 && cached.rows.every((r) => String(r.model_id).startsWith('llama-server:')), JSON.stringify(cached.rows));
      await w.stop();
    });

    test('the generation server killed mid-job: the job is retried and completes once the server is back', async () => {
      const p = await proxy(gen);
      const w = await startWorker({ concurrency: 2, maxRetries: 10, generationServer: p.url, serverRetries: 0 });
      p.script.push({ kind: 'hold' });
      const [id] = await enqueue(db.pool, [
        { function_name: 'generate_choice', parameters: { prompt: 'kill me', choices: CHOICES, max_tokens: 24, seed: 42, use_cache: false } },
      ]);
      await waitFor('the request reached the server', async () => p.holding === 1, 30_000);
      await gen.kill();
      p.release(); // the proxy finds the server gone and drops the connection
      await waitFor('the attempt failed and the job waits for a retry', async () => {
        const r = await row(db.pool, id);
        return r.retry_count >= 1 && /connection failed/.test(r.error ?? '');
      }, 30_000);
      await gen.start();
      await waitFor('the job completed after the server came back', async () => (await row(db.pool, id)).status === 'completed', 60_000);
      assert.ok(CHOICES.includes((await row(db.pool, id)).result));
      await w.stop();
    });

    test("a job's timeout against a slow server aborts the request and fails the job with the timeout", async () => {
      const p = await proxy(gen);
      const w = await startWorker({ concurrency: 1, generationServer: p.url });
      p.script.push({ kind: 'hold' });
      const [id] = await enqueue(db.pool, [
        {
          function_name: 'generate_regex',
          parameters: { prompt: 'slow', pattern: REGEX, max_tokens: 24, seed: 42, use_cache: false },
          timeout_seconds: 1,
          max_retries: 0,
        },
      ]);
      await waitFor('the job failed', async () => (await row(db.pool, id)).status === 'failed', 30_000);
      assert.match((await row(db.pool, id)).error, /timed out after 1 s/);
      await waitFor('the HTTP request was aborted', async () => p.aborted >= 1);
      p.release();
      await w.stop();
    });
  });
});
