import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { enqueue, gen, spawnWorker, startTestWorker, waitFor } from '../worker/fixtures/queue.ts';
import { startTcpProxy } from './fixtures/tcpProxy.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (the lines that are samples). */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

async function scrape(base: string): Promise<{ text: string; samples: Sample[]; contentType: string }> {
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  const text = await res.text();
  return { text, samples: parseMetrics(text), contentType: res.headers.get('content-type') ?? '' };
}

async function health(base: string): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${base}/health`);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

test('/metrics counts jobs by function and outcome, with histograms and queue gauges; /health is 503 while stopping', async () => {
  const db = await createTestDatabase();
  const proc = spawnWorker(db.url, ['--worker-id', 'metrics-w', '--metrics-port', '0', '--shutdown-grace', '2', '--heartbeat-interval', '0.25', '--heartbeat-timeout', '2']);
  try {
    await proc.started;
    const base = await waitFor('metrics line', async () => /metrics: (http:\/\/\S+)\/metrics/.exec(proc.stdout())?.[1]);

    const h0 = await health(base);
    assert.equal(h0.status, 200);
    assert.equal(h0.body.status, 'ok');
    assert.equal(h0.body.worker_id, 'metrics-w');
    assert.equal(h0.body.db, true);
    assert.ok(!Number.isNaN(Date.parse(h0.body.last_heartbeat)), `last_heartbeat ${h0.body.last_heartbeat}`);

    const ids = await enqueue(db.pool, [
      gen('one'),
      gen('two'),
      gen('sleep:30'),
      gen('throw:boom', { max_retries: 0 }),
      { function_name: 'embed', parameters: { text_input: 'hello', seed: 42, use_cache: false } },
    ]);
    await waitFor('all jobs ended', async () => {
      const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE request_id = ANY($1) AND status IN ('completed', 'failed')`, [ids]);
      return r.rows[0].n === ids.length;
    });
    const [waiting] = await enqueue(db.pool, [gen('hang')]); // keeps one job running for the stop below

    let last = '';
    const { samples, text, contentType } = await waitFor('a scrape with every job counted', async () => {
      const s = await scrape(base);
      last = s.text.split('\n').filter((l) => l.startsWith('steadytext_worker_jobs_total') && !l.endsWith(' 0')).join('\n');
      return value(s.samples, 'steadytext_worker_jobs_total', { function_name: 'embed', status: 'completed' }) === 1 ? s : undefined;
    }, 20_000, 100).catch(async (err: Error) => {
      const rows = await db.pool.query(`SELECT function_name, status, error FROM steadytext_queue ORDER BY created_at`);
      throw new Error(`${err.message}\nlast scrape:\n${last}\nqueue: ${JSON.stringify(rows.rows)}`);
    });
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    const jobs = (fn: string, status: string) => value(samples, 'steadytext_worker_jobs_total', { function_name: fn, status });
    assert.equal(jobs('generate', 'completed'), 3);
    assert.equal(jobs('generate', 'failed'), 1);
    assert.equal(jobs('generate', 'retried'), 0);
    assert.equal(jobs('embed', 'completed'), 1);
    assert.equal(jobs('rerank', 'completed'), 0, 'every function has its series from the start');

    // Histogram: cumulative buckets, +Inf equals the count, the 30 ms sleep lands above 25 ms.
    const bucket = (le: string) =>
      value(samples, 'steadytext_worker_job_duration_seconds_bucket', { function_name: 'generate', status: 'completed', le });
    assert.equal(bucket('+Inf'), 3);
    assert.equal(value(samples, 'steadytext_worker_job_duration_seconds_count', { function_name: 'generate', status: 'completed' }), 3);
    assert.ok(bucket('0.025')! <= 2, `le=0.025 holds ${bucket('0.025')}: the 30 ms job is above it`);
    assert.equal(bucket('300'), 3);
    assert.ok(value(samples, 'steadytext_worker_job_duration_seconds_sum', { function_name: 'generate', status: 'completed' })! >= 0.03);
    assert.equal(value(samples, 'steadytext_worker_job_duration_seconds_count', { function_name: 'generate', status: 'failed' }), 1);
    assert.match(text, /# TYPE steadytext_worker_job_duration_seconds histogram/);

    // Queue gauges, read from the database at scrape time.
    const queue = (fn: string, status: string) => value(samples, 'steadytext_queue_jobs', { function_name: fn, status });
    assert.equal(queue('generate', 'completed'), 3);
    assert.equal(queue('generate', 'failed'), 1);
    assert.equal(queue('embed', 'completed'), 1);
    assert.equal(queue('rerank', 'pending'), 0);
    assert.ok(value(samples, 'steadytext_queue_depth')! <= 1);
    assert.equal(value(samples, 'steadytext_worker_db_up'), 1);

    // Model state: roles this worker has served are loaded.
    assert.equal(value(samples, 'steadytext_worker_model_loaded', { role: 'generation', model_id: 'scripted-generation' }), 1);
    assert.equal(value(samples, 'steadytext_worker_model_loaded', { role: 'embedding' }), 1);
    assert.equal(value(samples, 'steadytext_worker_model_loaded', { role: 'reranking' }), 0);
    assert.equal(value(samples, 'steadytext_worker_info', { worker_id: 'metrics-w', concurrency: '1' }), 1);
    assert.ok(value(samples, 'process_cpu_user_seconds_total')! >= 0, 'default process metrics');

    // Stopping: the hung job holds the worker in its grace period; /health says 503.
    await waitFor('hang running', async () => (await db.pool.query(`SELECT status FROM steadytext_queue WHERE request_id = $1`, [waiting])).rows[0].status === 'processing');
    assert.equal((await scrape(base)).samples.find((s) => s.name === 'steadytext_worker_running_jobs')?.value, 1);
    proc.kill('SIGTERM');
    const stopping = await waitFor('503 while stopping', async () => {
      const h = await health(base);
      return h.status === 503 ? h : undefined;
    });
    assert.equal(stopping.body.status, 'stopping');
    assert.equal(stopping.body.worker_id, 'metrics-w');
    assert.equal(value((await scrape(base)).samples, 'steadytext_worker_stopping'), 1);
    assert.equal(await proc.exited, 0);
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    await db.drop();
  }
});

test('/health is 503 with db:false while the database is unreachable, 200 again once it is back', async () => {
  const db = await createTestDatabase();
  const proxy = await startTcpProxy(db.url);
  const worker = await startTestWorker(proxy.url(db.url), { metricsPort: 0, metricsHost: '127.0.0.1' });
  try {
    const base = worker.metricsServer!.url;
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
    const ok = await health(base);
    assert.equal(ok.status, 200);
    assert.deepEqual([ok.body.status, ok.body.db, ok.body.worker_id], ['ok', true, worker.workerId]);

    await proxy.pause();
    const down = await health(base);
    assert.equal(down.status, 503);
    assert.equal(down.body.db, false);
    assert.equal(down.body.status, 'db_unreachable');
    assert.ok(down.body.error, 'the error says why');
    const m = await scrape(base); // still answers, with the database marked down
    assert.equal(value(m.samples, 'steadytext_worker_db_up'), 0);
    assert.equal(value(m.samples, 'steadytext_queue_jobs'), undefined, 'no stale queue gauges');

    await proxy.resume();
    await waitFor('healthy again', async () => (await health(base)).status === 200, 15_000, 200);
  } finally {
    await proxy.resume().catch(() => {});
    await worker.stop();
    await proxy.close();
    await db.drop();
  }
});

test('metrics are off unless a port is set; a bad port is a settings error', async () => {
  const { resolveSettings, SettingsError } = await import('../../src/worker/index.ts');
  const url = 'postgres://localhost/x';
  assert.equal(resolveSettings({ databaseUrl: url }, {}, {}).metricsPort, undefined);
  assert.equal(resolveSettings({ databaseUrl: url }, { STEADYTEXT_WORKER_METRICS_PORT: '9464' }, {}).metricsPort, 9464);
  assert.equal(resolveSettings({ databaseUrl: url, metricsPort: '9500' }, { STEADYTEXT_WORKER_METRICS_PORT: '9464' }, {}).metricsPort, 9500);
  assert.throws(() => resolveSettings({ databaseUrl: url, metricsPort: '70000' }, {}, {}), (e: Error) => e instanceof SettingsError && /--metrics-port/.test(e.message));
  assert.throws(() => resolveSettings({ databaseUrl: url }, { STEADYTEXT_WORKER_METRICS_PORT: 'http' }, {}), /STEADYTEXT_WORKER_METRICS_PORT/);
});
