// The dashboard has no login and a Retry button, and shows tenants' failed
// prompts: it answers only to its own Host (a DNS-rebinding page sends its
// own name), refuses state-changing requests from other origins, and may not
// be framed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startDashboard, type Dashboard } from '../../src/dashboard/server.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { enqueue, gen, statusOf } from '../worker/fixtures/queue.ts';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request with exactly these headers (fetch would not let a test choose Host). */
function request(base: string, method: string, path: string, headers: Record<string, string>): Promise<Answer> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path, headers: { connection: 'close', ...headers }, setHost: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

/** A request that failed for good, as the dashboard lists it. */
async function failedJob(db: TestDatabase): Promise<string> {
  const [id] = await enqueue(db.pool, [gen('boom')]);
  await db.pool.query(
    `UPDATE steadytext_queue SET status = 'failed', error = 'boom', failed_at = now(), completed_at = now() WHERE request_id = $1`,
    [id],
  );
  return id;
}

async function withDashboard(f: (d: Dashboard, db: TestDatabase, port: number) => Promise<void>, allowedHosts?: string[]): Promise<void> {
  const db = await createTestDatabase();
  const d = await startDashboard({ connection: { connectionString: db.url }, port: 0, sampleIntervalMs: 60_000, allowedHosts });
  try {
    await f(d, db, Number(new URL(d.url).port));
  } finally {
    await d.close();
    await db.drop();
  }
}

const RETRY = { 'x-steadytext-dashboard': '1' };

test('the dashboard answers only its own Host: a DNS-rebinding name gets 403 on the page, the API and Retry; loopback names and allowed hosts are served', async () => {
  await withDashboard(
    async (d, db, port) => {
      const id = await failedJob(db);
      const rebound = `attacker.example:${port}`;
      for (const path of ['/', '/app.js', '/api/summary']) {
        const a = await request(d.url, 'GET', path, { host: rebound });
        assert.equal(a.status, 403, `GET ${path} with Host ${rebound}`);
        assert.doesNotMatch(a.body, /boom/);
      }
      // What a rebound page's fetch sends: its own name as Host and as Origin.
      const press = await request(d.url, 'POST', `/api/retry/${id}`, { host: rebound, origin: `http://${rebound}`, ...RETRY });
      assert.equal(press.status, 403);
      assert.equal(await statusOf(db.pool, id), 'failed', 'Retry was not pressed');
      assert.equal((await request(d.url, 'GET', '/', { host: `localhost:${port + 1}` })).status, 403, 'its own names, on its own port only');
      const noHost = await request(d.url, 'GET', '/', {});
      assert.ok([400, 403].includes(noHost.status), `no Host at all: ${noHost.status}`); // node:http itself answers 400
      assert.equal((await request(d.url, 'GET', '/', { host: 'proxy.internal:8444' })).status, 403, 'an allowed name:port is that port only');

      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`, 'dash.example.org', 'dash.example.org:9999', 'proxy.internal:8443']) {
        assert.equal((await request(d.url, 'GET', '/api/summary', { host })).status, 200, `Host ${host}`);
      }
    },
    ['dash.example.org', 'proxy.internal:8443'],
  );
});

test('state-changing requests from another origin are refused (403) even with the dashboard header; its own page may Retry', async () => {
  await withDashboard(async (d, db, port) => {
    const id = await failedJob(db);
    const host = `127.0.0.1:${port}`;
    const refused: Array<Record<string, string>> = [
      { origin: 'http://attacker.example' },
      { origin: `http://localhost:${port}` }, // another origin, though the same server
      { origin: `http://127.0.0.1:${port + 1}` },
      { origin: 'null' }, // a sandboxed frame, a file: page
      { 'sec-fetch-site': 'cross-site' }, // a browser that sent no Origin
      { 'sec-fetch-site': 'same-site' },
    ];
    for (const headers of refused) {
      const a = await request(d.url, 'POST', `/api/retry/${id}`, { host, ...RETRY, ...headers });
      assert.equal(a.status, 403, JSON.stringify(headers));
      assert.match(a.body, /cross-origin/);
    }
    assert.equal(await statusOf(db.pool, id), 'failed', 'none of them retried the job');
    // The page itself: its fetch sends its own origin.
    const own = await request(d.url, 'POST', `/api/retry/${id}`, { host, origin: `http://${host}`, 'sec-fetch-site': 'same-origin', ...RETRY });
    assert.equal(own.status, 200, own.body);
    assert.equal(await statusOf(db.pool, id), 'pending');
  });
});

test("every answer forbids framing and sniffing: X-Frame-Options DENY, CSP frame-ancestors 'none'", async () => {
  await withDashboard(async (d, _db, port) => {
    const host = `127.0.0.1:${port}`;
    const answers = [
      await request(d.url, 'GET', '/', { host }),
      await request(d.url, 'GET', '/app.js', { host }),
      await request(d.url, 'GET', '/api/summary', { host }),
      await request(d.url, 'GET', '/nothing-here', { host }),
      await request(d.url, 'GET', '/', { host: 'attacker.example' }),
    ];
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 404, 403]);
    for (const a of answers) {
      assert.equal(a.headers['x-frame-options'], 'DENY');
      assert.match(String(a.headers['content-security-policy']), /(^|;)\s*frame-ancestors 'none'/);
      assert.match(String(a.headers['content-security-policy']), /(^|;)\s*default-src 'none'/);
      assert.equal(a.headers['x-content-type-options'], 'nosniff');
      assert.equal(a.headers['referrer-policy'], 'no-referrer');
      assert.equal(a.headers['cache-control'], 'no-store');
    }
  });
});
