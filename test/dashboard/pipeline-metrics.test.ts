// The worker's /metrics: per-pipeline gauges read from
// steadytext_pipeline_status() at scrape time (src/worker/metrics.ts), served
// by the worker's metrics server over a real database; no worker claims the
// rows, so the counts are the ones this test makes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerMetrics, type MetricsSubject } from '../../src/worker/metrics.ts';
import { MetricsServer } from '../../src/worker/metricsServer.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { createDocumentsPipeline, pipelineWhen, settleRows } from '../helpers/pipelines.ts';
import { waitFor } from '../worker/fixtures/queue.ts';

const subject: MetricsSubject = {
  workerId: 'pipeline-metrics',
  models: {},
  stats: { running: 0 },
  settings: { concurrency: 1 },
  isStopping: false,
  engineModelLoaded: () => undefined,
};

/** The samples of one scrape whose name starts with steadytext_pipeline_: `name{pipeline="x"}` → value. */
async function pipelineSamples(base: string): Promise<Map<string, number>> {
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^(steadytext_pipeline_\w+)\{pipeline="([^"]*)"\} (\S+)$/.exec(line);
    if (m) out.set(`${m[1]}{${m[2]}}`, Number(m[3]));
  }
  return out;
}

test('/metrics: a gauge per pipeline for rows, done, pending, failed, stale, coverage, lag and paused', async () => {
  const db = await createTestDatabase();
  const logged: string[] = [];
  const server = await MetricsServer.start({
    metrics: new WorkerMetrics(subject),
    subject,
    connection: { connectionString: db.url },
    host: '127.0.0.1',
    port: 0,
    heartbeatTimeoutSeconds: 60,
    log: (line) => logged.push(line),
  });
  try {
    assert.equal((await pipelineSamples(server.url)).size, 0, 'no pipeline, no series');
    const res = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(res, /^# TYPE steadytext_pipeline_coverage_ratio gauge$/m, 'declared before any pipeline exists');

    const name = await createDocumentsPipeline(db.pool, { rows: 4 });
    await pipelineWhen(db.pool, name, '4 pending', (p) => p.rows === 4 && p.pending === 4);
    await settleRows(db.pool, name, { done: 2, failed: 1 });
    await pipelineWhen(db.pool, name, '2 done, 1 failed', (p) => p.done === 2 && p.failed === 1);

    const m = await pipelineSamples(server.url);
    const v = (metric: string) => m.get(`${metric}{${name}}`);
    assert.equal(v('steadytext_pipeline_rows'), 4);
    assert.equal(v('steadytext_pipeline_done_rows'), 2);
    assert.equal(v('steadytext_pipeline_pending_rows'), 1);
    assert.equal(v('steadytext_pipeline_processing_rows'), 0);
    assert.equal(v('steadytext_pipeline_failed_rows'), 1);
    assert.equal(v('steadytext_pipeline_stale_rows'), 0);
    assert.equal(v('steadytext_pipeline_coverage_ratio'), 0.5);
    assert.ok(v('steadytext_pipeline_lag_seconds')! > 0, 'a pending change has an age');
    assert.equal(v('steadytext_pipeline_paused'), 0);

    await db.pool.query(`SELECT steadytext_pipeline_pause($1)`, [name]);
    await waitFor('paused = 1', async () => (await pipelineSamples(server.url)).get(`steadytext_pipeline_paused{${name}}`) === 1);

    // A dropped pipeline's series go at the next scrape.
    await db.pool.query(`SELECT steadytext_pipeline_drop($1)`, [name]);
    await waitFor('no series left', async () => (await pipelineSamples(server.url)).size === 0);
    assert.deepEqual(logged, []);
  } finally {
    await server.close();
    await db.drop();
  }
});
