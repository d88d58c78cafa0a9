// The default models' path without the internet: a local hub (localHub.ts)
// serves Qwen-shaped tiny GGUFs under the default set's file names, with the
// hub's URLs and headers; HF_ENDPOINT points the real downloader at it
// (node-llama-cpp's createModelDownloader + our verification and lock).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { downloadModel } from '../../src/engine/download.ts';
import { loadEngine, ModelNotFoundError } from '../../src/engine/index.ts';
import { modelSource, parseHfReference, resolveSettings } from '../../src/engine/modelSources.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { spawnWorker } from '../worker/fixtures/queue.ts';
import { startLocalHub, type HubFile, type LocalHub } from './localHub.ts';
import { qwenShapedFiles } from './qwenShaped.ts';

const FILES = qwenShapedFiles();
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const hubFiles = (): HubFile[] =>
  FILES.map((f) => {
    const { owner, repo, file } = parseHfReference(f.reference);
    return { owner, repo, file, bytes: f.bytes };
  });
const dirs: string[] = [];
const emptyDir = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'steadytext-pull-'));
  dirs.push(dir);
  return dir;
};
const MODEL_ENV_KEYS = ['STEADYTEXT_GENERATION_MODEL', 'STEADYTEXT_EMBEDDING_MODEL', 'STEADYTEXT_RERANKING_MODEL'];

function cliEnv(hub: LocalHub, dir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HF_ENDPOINT: hub.url, STEADYTEXT_MODEL_DIR: dir, STEADYTEXT_MODELS: 'default' };
  for (const k of MODEL_ENV_KEYS) delete env[k];
  delete env.HF_TOKEN;
  return env;
}

/** `steadytext models pull ...` as a user types it; under `script`, so stderr is a terminal and the progress bar shows. */
function pullInTerminal(hub: LocalHub, dir: string, args: string[] = []): Promise<{ code: number; out: string }> {
  const cmd = [process.execPath, 'bin/steadytext.js', 'models', 'pull', ...args].map((a) => `'${a}'`).join(' ');
  return new Promise((resolve) => {
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { env: { ...cliEnv(hub, dir), COLUMNS: '160' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => resolve({ code: code ?? 1, out }));
  });
}

/** `models pull` as a background process (no terminal): stdout lines as they come, and its exit. */
function pullProcess(hub: LocalHub, dir: string, args: string[] = []) {
  const child = spawn(process.execPath, ['bin/steadytext.js', 'models', 'pull', ...args], { env: cliEnv(hub, dir) });
  let out = '';
  const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  const onData = (d: Buffer) => {
    out += d;
    for (const w of waiters.filter((x) => x.re.test(out))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number>((resolve) => child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 : 1))));
  return {
    child,
    exited,
    output: () => out,
    printed: (re: RegExp) => new Promise<void>((resolve) => (re.test(out) ? resolve() : waiters.push({ re, resolve }))),
  };
}

/** Files in the model dir that the engine could load, and what is left in .partial/. */
function dirState(dir: string): { models: string[]; partial: string[] } {
  const models = readdirSync(dir).filter((f) => f.endsWith('.gguf')).sort();
  const partialDir = path.join(dir, '.partial');
  return { models, partial: existsSync(partialDir) ? readdirSync(partialDir).sort() : [] };
}

let hub: LocalHub;
before(async () => {
  hub = await startLocalHub(hubFiles());
});
after(async () => {
  await hub.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

test('models pull fetches every role\'s file from HF_ENDPOINT into the model dir, with a progress bar', { timeout: 120_000 }, async () => {
  const dir = emptyDir();
  const { code, out } = await pullInTerminal(hub, dir);
  assert.equal(code, 0, out);
  for (const f of FILES) {
    assert.match(out, new RegExp(`${f.role}: downloading ${f.reference.replaceAll('.', '\\.')} from ${hub.url}`));
    assert.match(out, new RegExp(`${f.role}\\s+\\|[█░]+\\| 100% .*${f.fileName.replaceAll('.', '\\.')}`), `no finished progress bar for ${f.role}:\n${out}`);
    assert.equal(sha256(readFileSync(path.join(dir, f.fileName))), sha256(f.bytes), `${f.fileName} arrived intact`);
  }
  assert.deepEqual(dirState(dir), { models: FILES.map((f) => f.fileName).sort(), partial: [] });
  // The hub was asked the way Hugging Face is: resolve URL, then ranged GETs of the CDN URL it redirects to.
  for (const f of hubFiles()) {
    assert.ok(hub.requests.some((r) => r.method === 'HEAD' && r.path === `/${f.owner}/${f.repo}/resolve/main/${f.file}`));
    assert.ok(hub.downloads(f.file).length >= 1, `ranged download of ${f.file}`);
  }
  // A second pull downloads nothing.
  const again = await pullInTerminal(hub, dir);
  assert.equal(again.code, 0, again.out);
  for (const f of FILES) assert.match(again.out, new RegExp(`${f.role}: present `));
});

test('a connection cut halfway is retried and the file arrives whole', { timeout: 60_000 }, async () => {
  const dir = emptyDir();
  const settings = resolveSettings({ models: 'default', modelDir: dir }, { HF_ENDPOINT: hub.url });
  const source = modelSource('reranking', settings);
  const f = FILES.find((x) => x.role === 'reranking')!;
  const before = hub.downloads(f.fileName).length;
  hub.cutNext(f.fileName, Math.floor(f.bytes.length / 2));
  await downloadModel(source, settings, { timeoutMs: 20_000 });
  assert.equal(sha256(readFileSync(source.localPath)), sha256(f.bytes));
  assert.ok(hub.downloads(f.fileName).length - before >= 2, 'the cut request was followed by another');
  assert.deepEqual(dirState(dir).partial, []);
});

test('a pull killed mid-download leaves no file the engine would load; the next pull completes it', { timeout: 120_000 }, async () => {
  const dir = emptyDir();
  const f = FILES.find((x) => x.role === 'embedding')!;
  const held = hub.holdNext(f.fileName, Math.floor(f.bytes.length / 2));
  const first = pullProcess(hub, dir, ['--role', 'embedding']);
  await held.sent;
  first.child.kill('SIGKILL');
  await first.exited;
  held.release();
  assert.deepEqual(dirState(dir).models, [], 'nothing under a model file name');
  const engine = await loadEngine({ models: 'default', modelDir: dir, threads: 1 });
  try {
    await assert.rejects(engine.embed(['x']), ModelNotFoundError);
  } finally {
    await engine.dispose();
  }
  const second = pullProcess(hub, dir, ['--role', 'embedding']);
  assert.equal(await second.exited, 0, second.output());
  assert.equal(sha256(readFileSync(path.join(dir, f.fileName))), sha256(f.bytes));
  assert.deepEqual(dirState(dir), { models: [f.fileName], partial: [] });
});

test('a file whose size or sha256 differs from what the hub says is refused and deleted', { timeout: 60_000 }, async () => {
  const [gen] = hubFiles();
  const liar = await startLocalHub([
    { ...gen, advertisedSize: gen.bytes.length + 1000 },
  ]);
  const liarHash = await startLocalHub([{ ...gen, advertisedSha256: sha256(Buffer.from('something else')) }]);
  try {
    for (const [h, why] of [
      [liar, /downloaded \d+ bytes but the hub says the file has \d+/],
      [liarHash, /sha256 [0-9a-f]{64} does not match the hub's [0-9a-f]{64}/],
    ] as const) {
      const dir = emptyDir();
      const settings = resolveSettings({ models: 'default', modelDir: dir }, { HF_ENDPOINT: h.url });
      await assert.rejects(downloadModel(modelSource('generation', settings), settings, { timeoutMs: 20_000 }), (err: Error) => {
        assert.match(err.message, why);
        assert.match(err.message, /Qwen3-0\.6B-Q8_0\.gguf.*deleted.*steadytext models pull/);
        return true;
      });
      assert.deepEqual(dirState(dir).models, [], 'no model file');
      assert.ok(!dirState(dir).partial.some((p) => p.endsWith('.gguf')), 'the refused bytes are gone');
      assert.equal(h.downloads(gen.file).length, 2, 'fetched once more before it was refused');
    }
    // Through the CLI: a clear line and exit code 1.
    const dir = emptyDir();
    const { code, out } = await pullInTerminal(liar, dir, ['--role', 'generation']);
    assert.equal(code, 1, out);
    assert.match(out, /generation: .*hub says the file has/);
  } finally {
    await liar.close();
    await liarHash.close();
  }
});

test('two processes pulling the same model at once end with one good file', { timeout: 120_000 }, async () => {
  const dir = emptyDir();
  const f = FILES.find((x) => x.role === 'generation')!;
  const before = hub.downloads(f.fileName).length;
  const held = hub.holdNext(f.fileName, Math.floor(f.bytes.length / 3));
  const a = pullProcess(hub, dir, ['--role', 'generation']);
  await held.sent;
  const b = pullProcess(hub, dir, ['--role', 'generation']);
  await b.printed(/generation: waiting for process \d+/);
  // Releasing the hold cuts A's connection; A retries and finishes, B takes A's file.
  held.release();
  assert.equal(await a.exited, 0, a.output());
  assert.equal(await b.exited, 0, b.output());
  assert.equal(sha256(readFileSync(path.join(dir, f.fileName))), sha256(f.bytes));
  assert.deepEqual(dirState(dir), { models: [f.fileName], partial: [] });
  // B downloaded nothing: only A's two requests (held, then retried) reached the CDN.
  assert.equal(hub.downloads(f.fileName).length - before, 2);
});

test('after the pull, a worker on the default set answers every job type', { timeout: 180_000 }, async () => {
  const dir = emptyDir();
  const pulled = await promisify(execFile)(process.execPath, ['bin/steadytext.js', 'models', 'pull'], { env: cliEnv(hub, dir) });
  assert.match(pulled.stdout, /reranking: saved /);
  const db = await createTestDatabase();
  const env: NodeJS.ProcessEnv = { ...cliEnv(hub, dir), STEADYTEXT_ENGINE_MODULE: '', STEADYTEXT_THREADS: '1' };
  for (const k of MODEL_ENV_KEYS) env[k] = '';
  const worker = spawnWorker(db.url, ['--worker-id', 'default-set'], env);
  try {
    await worker.started;
    const q = (sql: string) => db.pool.query(sql).then((r) => r.rows[0].r);
    // Enqueue, commit, then wait: a worker sees only committed requests.
    const wait = async (call: string) => {
      const id = await q(`SELECT ${call} AS r`);
      return db.pool.query('SELECT steadytext_get_async_result($1, 120) AS r', [id]).then((r) => r.rows[0].r);
    };
    assert.equal(await wait(`steadytext_generate_async('What is 2+2?', max_tokens := 16)`), 'OK');
    const json = JSON.parse(await wait(`steadytext_generate_json_async('A user', '{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}'::jsonb, max_tokens := 32)`));
    assert.equal(typeof json.ok, 'boolean');
    assert.match(await wait(`steadytext_generate_regex_async('A phone number', '\\d{3}-\\d{4}', max_tokens := 16)`), /^\d{3}-\d{4}$/);
    assert.ok(['yes', 'no'].includes(await wait(`steadytext_generate_choice_async('Is it?', ARRAY['yes','no'])`)));
    const embedding = await wait(`steadytext_embed_async('PostgreSQL is amazing')`);
    assert.match(embedding, /^\[-?\d/);
    const ranked = JSON.parse(await wait(`steadytext_rerank_async('cats', ARRAY['kittens purr', 'stocks fell'])`));
    assert.equal(ranked.length, 2);
  } finally {
    worker.kill('SIGKILL');
    await worker.exited;
    await db.drop();
  }
});

test('models list --hub gives the hub\'s size and sha256 of each file and checks the local copies', { timeout: 60_000 }, async () => {
  const dir = emptyDir();
  const [gen, emb] = FILES;
  writeFileSync(path.join(dir, gen.fileName), gen.bytes);
  const corrupt = Buffer.from(emb.bytes);
  corrupt[corrupt.length - 1] ^= 0xff;
  writeFileSync(path.join(dir, emb.fileName), corrupt);
  const { stdout } = await promisify(execFile)(process.execPath, ['bin/steadytext.js', 'models', 'list', '--hub', '--json'], { env: cliEnv(hub, dir) });
  const d = JSON.parse(stdout) as { models: Array<{ role: string; hub: { size: number; sha256: string; matches?: boolean; url: string } }> };
  for (const f of FILES) {
    const m = d.models.find((x) => x.role === f.role)!;
    assert.equal(m.hub.size, f.bytes.length);
    assert.equal(m.hub.sha256, sha256(f.bytes));
    assert.ok(m.hub.url.startsWith(`${hub.url}/`), m.hub.url);
  }
  assert.deepEqual(d.models.map((m) => m.hub.matches), [true, false, undefined], 'good copy, corrupted copy, no copy');
  const text = await promisify(execFile)(process.execPath, ['bin/steadytext.js', 'models', 'list', '--hub'], { env: cliEnv(hub, dir) });
  assert.match(text.stdout, new RegExp(`embedding .*${sha256(emb.bytes)}.*NO`));
});

test('a reference the hub does not have fails at once, naming it and the hub', { timeout: 30_000 }, async () => {
  const dir = emptyDir();
  const settings = resolveSettings({ models: 'default', modelDir: dir }, { HF_ENDPOINT: hub.url, STEADYTEXT_GENERATION_MODEL: 'hf:nobody/nothing/missing-Q8_0.gguf' });
  await assert.rejects(downloadModel(modelSource('generation', settings), settings, { timeoutMs: 20_000 }), (err: Error) => {
    assert.match(err.message, /hf:nobody\/nothing\/missing-Q8_0\.gguf: not found on 127\.0\.0\.1:\d+ \(404\)/);
    return true;
  });
  assert.deepEqual(dirState(dir).models, []);
});
