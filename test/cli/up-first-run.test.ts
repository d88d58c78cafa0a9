// The README's first command on a machine without the default models:
// connected, `steadytext up` downloads them itself (from HF_ENDPOINT: here a
// local hub serving Qwen-shaped GGUFs under the default file names) and then
// serves jobs; offline, it stops before `ready:` and says what to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { parseHfReference } from '../../src/engine/modelSources.ts';
import { startLocalHub } from '../engine/localHub.ts';
import { qwenShapedFiles } from '../engine/qwenShaped.ts';
import { freePort } from '../helpers/freePort.ts';
import { startUp } from './fixtures/up.ts';

const FILES = qwenShapedFiles();

function env(dir: string, hub: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    HF_ENDPOINT: hub,
    STEADYTEXT_MODEL_DIR: path.join(dir, 'models'),
    STEADYTEXT_MODELS: 'default',
    STEADYTEXT_ENGINE_MODULE: '',
    STEADYTEXT_GENERATION_MODEL: '',
    STEADYTEXT_EMBEDDING_MODEL: '',
    STEADYTEXT_RERANKING_MODEL: '',
    STEADYTEXT_ALLOW_DOWNLOAD: '',
    STEADYTEXT_THREADS: '1',
    DATABASE_URL: '',
  };
  return e;
}

function scratch(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'steadytext-first-up-'));
  chmodSync(dir, 0o755); // as root, PostgreSQL runs as the `postgres` user and must reach its data
  return dir;
}

test('offline, steadytext up stops before ready: and says what to do, starting nothing', { timeout: 120_000 }, async () => {
  const dir = scratch();
  const closed = await freePort(); // a hub that refuses, as an offline machine's does
  const up = startUp(['--port', String(await freePort()), '--data-dir', path.join(dir, 'data'), '--metrics-port', '0'], env(dir, `http://127.0.0.1:${closed}`));
  try {
    const url = await up.ready;
    const code = url === null ? await up.exited : await up.stop();
    const out = up.output();
    assert.equal(url, null, `no ready: line\n${out}`);
    assert.equal(code, 1, out);
    assert.equal(out.match(/cannot reach/g)?.length, 1, `said once:\n${out}`);
    assert.match(out, /the models cannot be downloaded, so a worker could run no job/);
    assert.match(out, new RegExp(`copy those files into ${path.join(dir, 'models')}`));
    assert.match(out, /`steadytext up --models tiny`/);
    assert.doesNotMatch(out, /starting embedded PostgreSQL/, 'stopped before starting anything');
  } finally {
    await up.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('connected, the first steadytext up downloads the default models, then serves a job on them', { timeout: 600_000 }, async () => {
  const dir = scratch();
  const hub = await startLocalHub(
    FILES.map((f) => {
      const { owner, repo, file } = parseHfReference(f.reference);
      return { owner, repo, file, bytes: f.bytes };
    }),
  );
  const up = startUp(['--port', String(await freePort()), '--data-dir', path.join(dir, 'data'), '--metrics-port', '0'], env(dir, hub.url));
  try {
    const url = await up.ready;
    const out = up.output();
    assert.ok(url, `ready:\n${out}`);
    for (const f of FILES) {
      assert.match(out, new RegExp(`^${f.role}: downloading ${f.reference.replaceAll('.', '\\.')} from ${hub.url}$`, 'm'));
      assert.match(out, new RegExp(`^${f.role}: saved `, 'm'));
      assert.ok(existsSync(path.join(dir, 'models', f.fileName)), f.fileName);
    }
    assert.ok(out.indexOf('saved') < out.indexOf('starting embedded PostgreSQL'), 'models first');
    assert.match(out, /^ {2}generation +present/m);
    const client = new pg.Client({ connectionString: url! });
    await client.connect();
    try {
      const r = await client.query(`SELECT steadytext_get_async_result(steadytext_generate_async('What is 2+2?', max_tokens := 16), 120) AS r`);
      assert.equal(r.rows[0].r, 'OK', 'answered by the downloaded generation model');
    } finally {
      await client.end();
    }
    assert.equal(await up.stop(), 0, up.output());
  } finally {
    await up.stop();
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Ctrl-C during the first up\'s download stops it at once (exit 130, no half file); the next up picks it up and serves', { timeout: 600_000 }, async () => {
  const dir = scratch();
  const gen = FILES.find((f) => f.role === 'generation')!;
  const hub = await startLocalHub(
    FILES.map((f) => {
      const { owner, repo, file } = parseHfReference(f.reference);
      return { owner, repo, file, bytes: f.bytes };
    }),
  );
  // Held after a few KiB: less than any part the downloader may fetch in parallel, so the file cannot finish.
  const held = hub.holdNext(gen.fileName, 4096);
  const args = ['--port', String(await freePort()), '--data-dir', path.join(dir, 'data'), '--metrics-port', '0'];
  const first = startUp(args, env(dir, hub.url));
  let second: ReturnType<typeof startUp> | undefined;
  try {
    await held.sent;
    const interruptedAt = Date.now();
    const code = await first.stop(); // Ctrl-C during the generation model's download
    assert.equal(code, 130, first.output());
    assert.ok(Date.now() - interruptedAt < 60_000, 'stopped on Ctrl-C, not on the fixture\'s SIGKILL');
    assert.match(first.output(), /SIGINT: download stopped; `steadytext up` picks it up again/);
    assert.doesNotMatch(first.output(), /ready:/);
    assert.ok(!existsSync(path.join(dir, 'models', gen.fileName)), 'no half file under the model name');
    held.release();
    second = startUp(args, env(dir, hub.url));
    assert.ok(await second.ready, second.output());
    assert.match(second.output(), /^generation: saved /m);
    assert.equal(readFileSync(path.join(dir, 'models', gen.fileName)).equals(gen.bytes), true, 'the whole file, verified');
    assert.equal(await second.stop(), 0, second.output());
  } finally {
    held.release();
    await first.stop();
    await second?.stop();
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
