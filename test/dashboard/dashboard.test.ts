// End to end in headless Chromium (Debian's chromium, driven by
// playwright-core): jobs enqueued through the SQL functions, a worker process
// on the scripted engine, the dashboard page watched as the numbers change, a
// failed job shown with its error, retried from the page, and completed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startDashboard, type Dashboard } from '../../src/dashboard/server.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { spawnWorker, waitFor, type WorkerProcess } from '../worker/fixtures/queue.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// The flags this machine needs (closed network: no background connections).
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

async function generateAsync(db: TestDatabase, prompt: string): Promise<string> {
  const r = await db.pool.query(`SELECT steadytext_generate_async($1, use_cache => false) AS id`, [prompt]);
  return r.rows[0].id;
}

async function completedInDb(db: TestDatabase): Promise<number> {
  return (await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE status = 'completed'`)).rows[0].n;
}

async function statusOf(db: TestDatabase, id: string): Promise<string> {
  return (await db.pool.query(`SELECT status FROM steadytext_queue WHERE request_id = $1`, [id])).rows[0].status;
}

test('dashboard: numbers update live, a failed job shows its error, Retry runs it again', async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `Chromium is not installed at ${CHROMIUM}: the dashboard test needs it. Install it with \`apt-get update && apt-get install -y chromium\` (or set CHROMIUM_PATH).`,
  );
  const tmp = mkdtempSync(path.join(tmpdir(), 'steadytext-dashboard-'));
  const failFile = path.join(tmp, 'broken');
  const db = await createTestDatabase();
  let worker: WorkerProcess | undefined;
  let dashboard: Dashboard | undefined;
  let browser: Browser | undefined;
  try {
    dashboard = await startDashboard({ connection: { connectionString: db.url }, port: 0, sampleIntervalMs: 500 });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const page = await (await browser.newContext({ viewport: { width: 1200, height: 1000 } })).newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(dashboard.url);
    await page.getByRole('heading', { name: 'pg-steadytext' }).waitFor();
    const completed = page.locator('#count-completed');
    await waitFor('first render', async () => (await completed.textContent()) === '0', 10_000, 100);

    // Jobs before any worker: the page shows them pending. Three answer at
    // once; three wait behind a gate the test opens once the page has shown
    // the halfway count (however slow the machine).
    const gate = path.join(tmp, 'gate');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await generateAsync(db, `quick job ${i}`));
    for (let i = 3; i < 6; i++) ids.push(await generateAsync(db, `wait-for-file:${gate}`));
    await waitFor('6 pending on the page', async () => (await page.locator('#count-pending').textContent()) === '6', 10_000, 100);

    worker = spawnWorker(db.url, ['--worker-id', 'dash-worker', '--heartbeat-interval', '0.5', '--heartbeat-timeout', '3']);
    await worker.started;
    // The completed count rises live: 3 while the gate is shut, 6 after.
    await waitFor('completed count 3 on the page while the gate is shut', async () => (await completed.textContent()) === '3', 20_000, 100);
    assert.equal(await completedInDb(db), 3, 'the gated jobs wait for the gate');
    writeFileSync(gate, '');
    await waitFor('completed count 6 on the page', async () => (await completed.textContent()) === '6', 20_000, 100);
    await page.locator('tr[data-worker="dash-worker"]').getByText('running').waitFor();
    const genRow = page.locator('#functions tr[data-function="generate"]');
    await waitFor('p95 shown', async () => /\d+ ms|s$/.test((await genRow.locator('[data-col="p95"]').textContent()) ?? ''), 10_000, 100);

    // A job that fails while the file exists, with no retries left: failed, error on the page.
    writeFileSync(failFile, 'x');
    const client = await db.connect();
    await client.query('BEGIN');
    const broken = (await client.query(`SELECT steadytext_generate_async($1, use_cache => false) AS id`, [`fail-while-file:${failFile}`])).rows[0].id as string;
    await client.query(`UPDATE steadytext_queue SET max_retries = 0 WHERE request_id = $1`, [broken]);
    await client.query('COMMIT');
    const failedRow = page.locator(`#failed tr[data-request-id="${broken}"]`);
    await failedRow.waitFor({ timeout: 15_000 });
    assert.match((await failedRow.locator('td.error').textContent()) ?? '', /file .*broken exists/);
    assert.equal(await statusOf(db, broken), 'failed');
    await waitFor('failed count 1', async () => (await page.locator('#count-failed').textContent()) === '1', 10_000, 100);

    // More traffic so the chart has a shape, then a look at the page.
    for (let i = 0; i < 4; i++) await generateAsync(db, `sleep:200 later ${i}`);
    await new Promise((r) => setTimeout(r, 2500));
    const shot = path.join(tmpdir(), 'steadytext-dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);

    // Fix the cause, press Retry: the job goes back to pending, the worker runs it, it completes.
    rmSync(failFile);
    await page.getByRole('button', { name: `Retry job ${broken}` }).click();
    await page.getByRole('status').getByText(`Job ${broken} queued again.`).waitFor({ timeout: 5000 });
    await waitFor('retried job completed', async () => (await statusOf(db, broken)) === 'completed', 15_000, 100);
    await failedRow.waitFor({ state: 'detached', timeout: 10_000 });
    await waitFor('failed count 0', async () => (await page.locator('#count-failed').textContent()) === '0', 10_000, 100);
    await waitFor('completed count 11', async () => (await completed.textContent()) === '11', 15_000, 100);
    assert.deepEqual(pageErrors, [], 'no script errors on the page');

    // The API refuses a cross-site style post and a job that is not failed.
    const api = new URL('/api/retry/' + broken, dashboard.url);
    assert.equal((await fetch(api, { method: 'POST' })).status, 403);
    assert.equal((await fetch(api, { method: 'POST', headers: { 'X-Steadytext-Dashboard': '1' } })).status, 409);
  } finally {
    await browser?.close();
    worker?.kill('SIGKILL');
    await worker?.exited;
    await dashboard?.close();
    await db.drop();
    rmSync(tmp, { recursive: true, force: true });
  }
});
