// `steadytext models list --json` and `models pull` offline (a hub that does not
// resolve or does not answer: no test here reaches the internet).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../helpers/freePort.ts';

const run = (args: string[], env: Record<string, string>) =>
  promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/commands/models.ts', ...args], {
    env: { ...process.env, ...env },
  });

test('models list --json reports presence and the fix', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'steadytext-cli-'));
  const { stdout } = await run(['list', '--json'], { STEADYTEXT_MODEL_DIR: dir, STEADYTEXT_MODELS: 'default' });
  const d = JSON.parse(stdout);
  assert.equal(d.modelDir, dir);
  assert.equal(d.models.length, 3);
  assert.ok(d.models.every((m: { present: boolean; fix: string }) => !m.present && /steadytext models pull/.test(m.fix)));
});

test('models pull offline: one "cannot reach" line with the next step, fast; --models tiny writes the test set', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'steadytext-cli-'));
  const closed = await freePort(); // nothing listens there: the connection is refused, as behind a firewall
  // A name that never resolves (RFC 6761), as huggingface.co does not on an offline machine; and a hub that refuses.
  for (const [endpoint, why] of [
    ['http://hub.steadytext-offline.invalid', /cannot reach hub\.steadytext-offline\.invalid \(ENOTFOUND\): this machine looks offline/],
    [`http://127.0.0.1:${closed}`, new RegExp(`cannot reach 127\\.0\\.0\\.1:${closed}: .*ECONNREFUSED`)],
  ] as const) {
    const started = Date.now();
    await assert.rejects(run(['pull'], { STEADYTEXT_MODEL_DIR: dir, STEADYTEXT_MODELS: 'default', HF_ENDPOINT: endpoint }), (err: { code: number; stdout: string; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, why);
      assert.equal(err.stderr.match(/cannot reach/g)?.length, 1, `said once:\n${err.stderr}`);
      assert.match(err.stderr, /not downloaded: Qwen3-0\.6B-Q8_0\.gguf \(generation\), Qwen3-Embedding-0\.6B-Q8_0\.gguf \(embedding\), qwen3-reranker-0\.6b-q8_0\.gguf \(reranking\)/);
      assert.match(err.stderr, new RegExp(`next, one of:\n  - copy those files into ${dir}`));
      assert.match(err.stderr, /HF_ENDPOINT/);
      assert.match(err.stderr, /`steadytext up --models tiny`/);
      assert.doesNotMatch(err.stdout, /downloading/, 'nothing was tried file by file');
      return true;
    });
    assert.ok(Date.now() - started < 20_000, 'fails within seconds');
  }
  const { stdout } = await run(['pull', '--models', 'tiny'], { STEADYTEXT_MODEL_DIR: dir });
  assert.match(stdout, /steadytext-tiny-generation-v1-seed1\.gguf/);
});
