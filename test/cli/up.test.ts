// The README's main command: `steadytext up` on the embedded default reaches
// its `ready:` line, serves real jobs (tiny models) and stops cleanly on Ctrl-C.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';

function freePortGuess(): number {
  return 20000 + Math.floor(Math.random() * 20000);
}

test('steadytext up --models tiny: ready line, real jobs, clean stop on SIGINT', { timeout: 180_000 }, async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'steadytext-up-'));
  chmodSync(dataDir, 0o755); // as root, PostgreSQL runs as the `postgres` user and must reach it
  const port = freePortGuess();
  const env = { ...process.env };
  delete env.DATABASE_URL;
  delete env.STEADYTEXT_ENGINE_MODULE;
  const child = spawn(
    process.execPath,
    ['bin/steadytext.js', 'up', '--models', 'tiny', '--port', String(port), '--data-dir', dataDir, '--log-level', 'silent', '--metrics-port', '0'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
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
  } finally {
    child.kill('SIGINT');
    const code = await exited;
    rmSync(dataDir, { recursive: true, force: true });
    assert.equal(code, 0, out);
    assert.match(out, /stopped/);
  }
});
