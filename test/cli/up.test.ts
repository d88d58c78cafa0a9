// The README's main command: `steadytext up` on the embedded default reaches
// its `ready:` line, serves real jobs (tiny models) and stops cleanly on Ctrl-C.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startLocalServer } from '../../src/postgres/localServer.ts';
import { waitFor } from '../worker/fixtures/queue.ts';

function freePortGuess(): number {
  return 20000 + Math.floor(Math.random() * 20000);
}

test('steadytext up --models tiny: ready line, real jobs, Ctrl-C finishes the running job, then stops', { timeout: 900_000 }, async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'steadytext-up-'));
  chmodSync(dataDir, 0o755); // as root, PostgreSQL runs as the `postgres` user and must reach it
  const port = freePortGuess();
  const env = { ...process.env };
  delete env.DATABASE_URL;
  delete env.STEADYTEXT_ENGINE_MODULE;
  // The running job must finish however slow the machine: a grace longer than any run of it.
  env.STEADYTEXT_WORKER_SHUTDOWN_GRACE = '600';
  const child = spawn(
    process.execPath,
    ['bin/steadytext.js', 'up', '--models', 'tiny', '--port', String(port), '--data-dir', dataDir, '--log-level', 'silent', '--metrics-port', '0'],
    // Its own process group, as a shell gives a foreground job: Ctrl-C below
    // goes to the whole group, as a terminal sends it.
    { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready line in 120 s:\n${out}`)), 120_000);
      child.stdout.on('data', () => {
        const m = /^ready: (postgres:\/\/\S+)$/m.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      void exited.then((code) => reject(new Error(`up exited (${code}) before ready:\n${out}`)));
    });
    assert.match(out, /models: tiny/);
    const metrics = /^metrics: (http:\/\/\S+)$/m.exec(out);
    assert.ok(metrics, `no metrics line:\n${out}`);
    assert.ok(url.includes(`:${port}/`), url);

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const gen = await client.query(
        `SELECT steadytext_get_async_result(steadytext_generate_async('Write a poem about databases', max_tokens := 8), 60) AS r`,
      );
      assert.equal(typeof gen.rows[0].r, 'string');
      assert.ok(gen.rows[0].r.length > 0);
      // Same input, same output (a fresh request, not a cache hit).
      const again = await client.query(
        `SELECT steadytext_get_async_result(steadytext_generate_async('Write a poem about databases', max_tokens := 8, use_cache := false), 60) AS r`,
      );
      assert.equal(again.rows[0].r, gen.rows[0].r);

      const emb = await client.query(
        `SELECT steadytext_get_async_result(steadytext_embed_async('PostgreSQL is amazing'), 60) AS r`,
      );
      const vector = JSON.parse(emb.rows[0].r) as number[];
      const norm = Math.sqrt(vector.reduce((s, x) => s + x * x, 0));
      assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);

      // The spec's request-response pattern: enqueue and wait in one transaction.
      await client.query(`
        CREATE OR REPLACE FUNCTION generate_and_wait(prompt TEXT, timeout INTEGER DEFAULT 30)
        RETURNS TEXT AS $$
        DECLARE request_id UUID;
        BEGIN
            request_id := steadytext_generate_async(prompt);
            RETURN steadytext_get_async_result(request_id, timeout);
        END;
        $$ LANGUAGE plpgsql`);
      const rr = await client.query(`SELECT generate_and_wait('Write a poem about databases', 60) AS r`);
      assert.equal(typeof rr.rows[0].r, 'string');
    } finally {
      await client.end();
    }
    const scrape = await (await fetch(metrics[1])).text();
    assert.match(scrape, /steadytext_worker_jobs_total\{function_name="generate",status="completed"\} [1-9]/);

    // Ctrl-C while a job runs: the worker finishes it before PostgreSQL stops.
    const c2 = new pg.Client({ connectionString: url });
    await c2.connect();
    const running = (
      await c2.query(`SELECT steadytext_generate_async('a long one', max_tokens := 4000, use_cache := false) AS id`)
    ).rows[0].id as string;
    await waitFor('the long job to be running', async () =>
      (await c2.query(`SELECT status FROM steadytext_queue WHERE request_id = $1`, [running])).rows[0].status === 'processing', 120_000);
    await c2.end();
    process.kill(-child.pid!, 'SIGINT');
    assert.equal(await exited, 0, out);
    assert.match(out, /stopped/);

    const server = await startLocalServer({ dataDir, port });
    try {
      const c3 = new pg.Client({ connectionString: server.url });
      await c3.connect();
      const after = await c3.query(`SELECT status FROM steadytext_queue WHERE request_id = $1`, [running]);
      await c3.end();
      assert.equal(after.rows[0].status, 'completed', 'the job running at Ctrl-C was finished, not abandoned');
    } finally {
      await server.stop();
    }
  } finally {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
});
