// A job an inference server fails: the tenant who asked reads the status and
// the server's short message in the job's error, never the server's URL, an
// address the server names, its API key or the rest of its answer; the
// worker's log has all of it (but the key).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase } from '../helpers/db.ts';
import { enqueue, gen, row, startTestWorker, waitFor } from '../worker/fixtures/queue.ts';

const KEY = 'sk-test-4f2a9c0e1d';

/** An OpenAI-compatible server that lists one model and fails every chat completion the way `answers` says. */
async function failingServer(answers: Record<string, { status: number; body: string }>): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/v1/models') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ data: [{ id: 'm' }] }));
      }
      const prompt = (JSON.parse(body || '{}') as { messages?: Array<{ content: string }> }).messages?.[0]?.content ?? '';
      const a = answers[prompt] ?? { status: 500, body: 'unexpected prompt' };
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(a.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test("an inference server's error reaches the job trimmed (status and short message; no URL, address or API key); the worker logs the detail", async () => {
  const answers = {
    overloaded: {
      status: 503,
      body: JSON.stringify({
        error: { message: `upstream http://10.9.8.7:9000/generate is overloaded (key ${KEY} rejected)\nTraceback (most recent call last):\n  File "/srv/app.py", line 12` },
      }),
    },
    refused: { status: 400, body: JSON.stringify({ error: 'prompt is too long (4096 tokens at most)' }) },
  };
  const srv = await failingServer(answers);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'steadytext-key-'));
  const keyFile = path.join(dir, 'key');
  writeFileSync(keyFile, KEY, { mode: 0o600 });
  const db = await createTestDatabase();
  const log: string[] = [];
  const worker = await startTestWorker(
    db.url,
    {
      engineModule: '',
      generationServer: srv.url,
      generationServerDialect: 'openai',
      generationServerApiKeyFile: keyFile,
      serverRetries: '0',
      maxRetries: '0',
      logLevel: 'info',
    },
    { log: (line) => log.push(line) },
  );
  try {
    const [overloaded, refused] = await enqueue(db.pool, [gen('overloaded'), gen('refused')]);
    const failed = async (id: string) => waitFor(`${id} failed`, async () => ((await row(db.pool, id)).status === 'failed' ? row(db.pool, id) : null), 20_000);

    const a = (await failed(overloaded)).error as string;
    assert.equal(a, 'the generation server (openai): HTTP 503: upstream <url> is overloaded (key <api key> rejected) (after 1 attempt)');
    const b = (await failed(refused)).error as string;
    assert.equal(b, 'the generation server (openai): HTTP 400: prompt is too long (4096 tokens at most)');
    for (const e of [a, b]) {
      assert.ok(!e.includes(srv.url) && !e.includes(new URL(srv.url).host), `the server's address is in: ${e}`);
      assert.doesNotMatch(e, /10\.9\.8\.7|sk-test|Traceback|app\.py|\/v1\/chat/);
    }

    // The operator's log: which server, which endpoint, the whole answer; never the key.
    const detail = await waitFor('the logged detail', async () => log.find((l) => l.includes(overloaded) && l.includes(srv.url)));
    assert.match(detail, /POST \/v1\/chat\/completions: HTTP 503: upstream http:\/\/10\.9\.8\.7:9000\/generate is overloaded/);
    assert.match(detail, /Traceback/);
    assert.ok(log.some((l) => l.includes(refused) && l.includes(srv.url)));
    assert.ok(!log.some((l) => l.includes(KEY)), 'the API key is in no log line');
  } finally {
    await worker.stop();
    await db.drop();
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
