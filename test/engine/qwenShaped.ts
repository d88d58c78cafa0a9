// The Qwen-shaped tiny models (src/engine/tinyModels.ts, shape 'qwen') under
// the default set's file names: what the tests of the default path load,
// serve and download.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MODEL_ROLES, modelSource, resolveSettings } from '../../src/engine/modelSources.ts';
import { buildTinyModel } from '../../src/engine/tinyModels.ts';
import type { ModelRole } from '../../src/engine/types.ts';

/** Each role's default file name (from DEFAULT_MODELS) and the Qwen-shaped tiny bytes served under it. */
export function qwenShapedFiles(): Array<{ role: ModelRole; reference: string; fileName: string; bytes: Buffer }> {
  const settings = resolveSettings({ models: 'default', modelDir: '/nonexistent' }, {});
  return MODEL_ROLES.map((role) => {
    const source = modelSource(role, settings);
    return { role, reference: source.reference, fileName: path.basename(source.localPath), bytes: buildTinyModel(role, 'qwen') };
  });
}

/** A fresh model dir holding the Qwen-shaped set under the default file names. */
export function qwenShapedModelDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'steadytext-qwen-shaped-'));
  mkdirSync(dir, { recursive: true });
  for (const f of qwenShapedFiles()) writeFileSync(path.join(dir, f.fileName), f.bytes);
  return dir;
}
