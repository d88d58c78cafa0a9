// What an inference server's answer says about whose fault a failure is: a
// refusal of the request's input (EngineInputError: the job fails at once; a
// batch is split by the worker) or a fault of the server (retried). Against a
// small fake server, so it runs without llama-server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { HttpEngine } from '../../src/engine/httpEngine.ts';
import { HttpBackendError } from '../../src/engine/httpClient.ts';
import { EngineInputError } from '../../src/engine/types.ts';

/** The next answers of /v1/embeddings, one per request. */
const answers: Array<{ status: number; body: unknown }> = [];
let embedRequests = 0;
let server: http.Server;
let url = '';

before(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/v1/models' || req.url === '/info') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ data: [{ id: 'fake-embedding' }], model_id: 'fake-embedding' }));
      }
      embedRequests++;
      const a = answers.shift() ?? { status: 200, body: { data: [{ index: 0, embedding: [1, 0] }] } };
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});

after(() => new Promise((r) => server.close(r)));

const connect = (dialect: 'llama-server' | 'tei') =>
  HttpEngine.connect({ embedding: { url, dialect, timeoutMs: 5000, maxInFlight: 1, retries: 2, retryBackoffMs: 10, embedBatchSize: 64, model: 'fake-embedding' } });

test("413 (TEI's answer to an input over its limit) and llama-server's 500 \"input is too large to process\" are the input's fault: EngineInputError, one request; any other 500 is still retried", async () => {
  for (const [dialect, status, message] of [
    ['tei', 413, 'Input validation error: `inputs` must have less than 512 tokens. Given: 3000'],
    ['llama-server', 500, 'input (3000 tokens) is too large to process. increase the physical batch size (current batch size: 512)'],
  ] as const) {
    const e = await connect(dialect);
    answers.push({ status, body: { error: { message } } });
    embedRequests = 0;
    await assert.rejects(e.embed(['too long']), (err: Error) => {
      assert.ok(err instanceof EngineInputError, `${dialect} ${status}: ${String(err)}`);
      assert.ok(err.message.endsWith(`HTTP ${status}: ${message}`), err.message);
      return true;
    });
    assert.equal(embedRequests, 1, 'not retried');
  }
  // Any other 500 is a fault of the server: retried, then HttpBackendError.
  const e = await connect('llama-server');
  answers.push(...[1, 2, 3].map(() => ({ status: 500, body: { error: { message: 'out of memory' } } })));
  embedRequests = 0;
  await assert.rejects(e.embed(['fine']), (err: Error) => err instanceof HttpBackendError && /HTTP 500: out of memory \(after 3 attempts\)/.test(err.message));
  assert.equal(embedRequests, 3);
});
