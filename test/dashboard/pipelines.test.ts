// The dashboard's pipelines panel: /api/summary carries
// steadytext_pipeline_status()'s rows, and the page (headless Chromium, as
// dashboard.test.ts drives it) shows a pipeline once one exists: its coverage
// bar, counts and state, following the rows and `steadytext pipelines pause`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startDashboard, type Dashboard } from '../../src/dashboard/server.ts';
import { runCli } from '../cli/fixtures/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { createDocumentsPipeline, pipelineWhen, settleRows } from '../helpers/pipelines.ts';
import { waitFor } from '../worker/fixtures/queue.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

test('dashboard: the pipelines panel appears with a pipeline and follows its coverage, failures and pause', async () => {
  assert.ok(existsSync(CHROMIUM), `Chromium is not installed at ${CHROMIUM}: install it with \`apt-get update && apt-get install -y chromium\` (or set CHROMIUM_PATH).`);
  const db = await createTestDatabase();
  let dashboard: Dashboard | undefined;
  let browser: Browser | undefined;
  try {
    dashboard = await startDashboard({ connection: { connectionString: db.url }, port: 0, sampleIntervalMs: 500 });
    const summary = async () => (await (await fetch(new URL('/api/summary', dashboard!.url))).json()) as Record<string, any>;
    assert.deepEqual((await summary()).pipelines, []);

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const page = await (await browser.newContext({ viewport: { width: 1200, height: 1100 } })).newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(dashboard.url);
    await waitFor('first render', async () => (await page.locator('#count-pending').textContent()) === '0', 10_000, 100);
    assert.equal(await page.locator('#pipelines-section').isVisible(), false, 'no pipeline: no panel');

    const name = await createDocumentsPipeline(db.pool, { rows: 4 });
    await pipelineWhen(db.pool, name, '4 pending', (p) => p.rows === 4 && p.pending === 4);
    await settleRows(db.pool, name, { done: 2, failed: 1, error: 'refused' });
    await pipelineWhen(db.pool, name, '2 done, 1 failed', (p) => p.done === 2 && p.failed === 1);

    const s = await summary();
    assert.equal(s.pipelines.length, 1);
    const p = s.pipelines[0];
    assert.equal(p.name, name);
    assert.deepEqual([p.rows, p.done, p.pending, p.failed, p.stale, p.coverage, p.paused], [4, 2, 1, 1, 0, 50, false]);
    assert.equal(typeof p.lag_seconds, 'number');
    assert.equal(typeof p.throughput, 'number');

    const row = page.locator(`#pipelines tr[data-pipeline="${name}"]`);
    await row.waitFor({ timeout: 10_000 });
    assert.ok(await page.getByRole('heading', { name: 'Pipelines' }).isVisible());
    const meter = row.locator('meter');
    assert.equal(await meter.getAttribute('value'), '50');
    assert.equal(await meter.getAttribute('aria-label'), `Coverage of ${name}`);
    assert.equal(await row.locator('[data-col="coverage"]').textContent(), '50.0 %');
    assert.equal(await row.locator('[data-col="pending"]').textContent(), '1');
    assert.equal(await row.locator('[data-col="failed"]').textContent(), '1');
    assert.equal(await row.locator('[data-col="state"]').textContent(), 'backfilling', 'one row the scan has not reached yet');
    assert.match((await row.locator('th').textContent()) ?? '', /documents → .*documents\.embedding/);

    const paused = await runCli(['pipelines', 'pause', name], { DATABASE_URL: db.url });
    assert.equal(paused.code, 0, paused.stderr);
    await waitFor('the paused badge', async () => (await row.locator('[data-col="state"]').textContent()) === 'paused', 10_000, 100);
    assert.equal((await summary()).pipelines[0].paused, true);

    const retried = await runCli(['pipelines', 'retry', name], { DATABASE_URL: db.url });
    assert.equal(retried.code, 0, retried.stderr);
    await waitFor('no failed row on the page', async () => (await row.locator('[data-col="failed"]').textContent()) === '0', 10_000, 100);
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser?.close();
    await dashboard?.close();
    await db.drop();
  }
});
