// `steadytext models list --json` and `models pull` offline.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

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

test('models pull fails clearly and quickly offline; --models tiny writes the test set', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'steadytext-cli-'));
  await assert.rejects(run(['pull', '--role', 'embedding'], { STEADYTEXT_MODEL_DIR: dir, STEADYTEXT_MODELS: 'default' }), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, /embedding: .*(offline|failed|no data)/);
    return true;
  });
  const { stdout } = await run(['pull', '--models', 'tiny'], { STEADYTEXT_MODEL_DIR: dir });
  assert.match(stdout, /steadytext-tiny-generation-v1-seed1\.gguf/);
});
