// Every listener of every command binds to loopback unless told otherwise,
// and what an unauthenticated caller of the worker's /health reads names no
// database error (the worker's log does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startDashboard } from '../../src/dashboard/server.ts';
import { defaultOf, SETTINGS, type EntryPoint } from '../../src/settings.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { startTcpProxy } from '../dashboard/fixtures/tcpProxy.ts';
import { ROOT, spawnWorker, startTestWorker, waitFor } from '../worker/fixtures/queue.ts';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Can a TCP connection to host:port be opened? */
function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** This machine's IPv4 addresses that are not loopback (a container's eth0, a host's LAN address). */
const outwardAddresses = () =>
  Object.values(os.networkInterfaces())
    .flat()
    .filter((a) => a && a.family === 'IPv4' && !a.internal)
    .map((a) => a!.address);

test('every listener binds to loopback unless told otherwise: the worker\'s and up\'s metrics, the dashboard (and no listener goes unlisted here)', async () => {
  // The listeners there are: each `.listen(` in src/ is one of these files, started below.
  // A file whose every `.listen(` names 127.0.0.1 itself (a port probe, such as up's
  // check for a free PostgreSQL port) binds to loopback by construction.
  const listeners: string[] = [];
  for (const f of readdirSync(path.join(ROOT, 'src'), { recursive: true }) as string[]) {
    if (!f.endsWith('.ts')) continue;
    const text = readFileSync(path.join(ROOT, 'src', f), 'utf8');
    const calls = text.match(/\.listen\([^)]*\)?/g) ?? [];
    if (calls.length === 0) continue;
    if (calls.every((c) => /^\.listen\([^,]+, '127\.0\.0\.1'/.test(c))) continue;
    listeners.push(f);
  }
  assert.deepEqual(listeners.sort(), ['dashboard/server.ts', 'worker/metricsServer.ts'], 'a new listener: bind it to loopback by default and add it here');
  for (const entry of ['worker', 'up', 'programmatic'] as EntryPoint[]) {
    assert.ok(LOOPBACK.has(defaultOf(SETTINGS.metricsHost, entry)!), `${entry}: metrics host ${defaultOf(SETTINGS.metricsHost, entry)}`);
  }
  assert.ok(LOOPBACK.has(defaultOf(SETTINGS.dashboardHost, 'dashboard')!));

  const db = await createTestDatabase();
  // `steadytext worker --metrics-port 0`, nothing else said about where.
  const proc = spawnWorker(db.url, ['--metrics-port', '0']);
  const dashboard = await startDashboard({ connection: { connectionString: db.url }, port: 0, sampleIntervalMs: 60_000 });
  try {
    await proc.started;
    const metrics = new URL(await waitFor('the metrics line', async () => /metrics: (http:\S+)\/metrics/.exec(proc.stdout())?.[1], 10_000));
    const dash = new URL(dashboard.url);
    for (const [what, url] of [['worker metrics', metrics], ['dashboard', dash]] as const) {
      assert.equal(url.hostname, '127.0.0.1', `${what} listens on ${url.host}`);
      assert.equal(await connects('127.0.0.1', Number(url.port)), true, `${what} answers on loopback`);
      for (const address of outwardAddresses()) {
        assert.equal(await connects(address, Number(url.port)), false, `${what} must not answer on ${address}`);
      }
    }
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    await dashboard.close();
    await db.drop();
  }
});

test("/health tells its callers 'database unreachable' and nothing of the error; the worker log has the details", async () => {
  const db = await createTestDatabase();
  const proxy = await startTcpProxy(db.url);
  const log: string[] = [];
  const worker = await startTestWorker(proxy.url(db.url), { metricsPort: 0, logLevel: 'info' }, { log: (line) => log.push(line) });
  try {
    const health = async () => {
      const res = await fetch(`${worker.metricsServer!.url}/health`);
      return { status: res.status, text: await res.text() };
    };
    assert.equal((await health()).status, 200);
    await proxy.pause();
    const down = await health();
    assert.equal(down.status, 503);
    const body = JSON.parse(down.text) as Record<string, unknown>;
    assert.equal(body.status, 'db_unreachable');
    assert.equal(body.error, 'database unreachable');
    assert.doesNotMatch(down.text, new RegExp(`ECONNREFUSED|${proxy.port}|terminat`, 'i'), 'no driver text, host or port');
    const logged = await waitFor('the logged detail', async () => log.find((l) => /health: database unreachable: \S/.test(l)));
    assert.match(logged, /ECONNREFUSED|terminat|connect/i, 'the operator gets the driver\'s text');
    await health();
    assert.equal(log.filter((l) => /health: database unreachable/.test(l)).length, 1, 'logged once while the error stays the same');
  } finally {
    await proxy.resume().catch(() => {});
    await worker.stop();
    await proxy.close();
    await db.drop();
  }
});
