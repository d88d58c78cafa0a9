// Where each role's model comes from: the default set (real GGUFs on Hugging
// Face), env overrides, or the tiny self-written test set. Pure configuration:
// nothing here loads a model or touches the network.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { tinyModelFileName, tinyModelId, TINY_GENERATOR_VERSION } from './tinyModels.ts';
import { EngineInputError, type ModelRole } from './types.ts';
import {
  DEFAULT_MODELS as BUILT_IN_MODELS,
  GPU_MODES as ALL_GPU_MODES,
  resolveEngineSettings,
  SETTINGS,
  type EngineSettingValues,
} from '../settings.ts';

export type ModelSet = 'default' | 'tiny';

export const MODEL_ROLES: readonly ModelRole[] = ['generation', 'embedding', 'reranking'];

/** SteadyText's families (src/settings.ts holds them with every other default). */
export const DEFAULT_MODELS: Record<ModelRole, string> = BUILT_IN_MODELS;

export const MODEL_ENV: Record<ModelRole, string> = {
  generation: SETTINGS.generationModel.env!,
  embedding: SETTINGS.embeddingModel.env!,
  reranking: SETTINGS.rerankingModel.env!,
};

export const PULL_COMMAND = 'steadytext models pull';

export interface ModelSource {
  role: ModelRole;
  set: ModelSet;
  kind: 'hf' | 'path' | 'tiny';
  /** What the configuration says: `hf:owner/repo/file.gguf`, a path, or `tiny`. */
  reference: string;
  /** Where the file is (or will be, once pulled). */
  localPath: string;
}

/** The engine's settings, resolved by src/settings.ts (flags/options > env > defaults). */
export interface EngineSettings extends EngineSettingValues {
  /** Local inference device: 'off' (CPU, the tested default), 'auto' (a GPU when one works, else CPU), 'cuda', 'vulkan'. */
  gpu: GpuMode;
  env: NodeJS.ProcessEnv;
}

export type GpuMode = 'off' | 'auto' | 'cuda' | 'vulkan';
export const GPU_MODES: readonly GpuMode[] = ALL_GPU_MODES;

/** Measured on the 2-core dev box: 1 thread is fastest for small models (docs/engine.md). */
export const DEFAULT_THREADS = SETTINGS.threads.default as number;
export const DEFAULT_PARALLEL = SETTINGS.parallel.default as number;

export function defaultModelDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolveEngineSettings({}, env).modelDir;
}

/** Options (as loadEngine takes them) > env > defaults, through the one settings table (src/settings.ts). */
export function resolveSettings(
  opts: { models?: ModelSet; threads?: number; modelDir?: string; parallel?: number; contexts?: number; gpu?: GpuMode } = {},
  env: NodeJS.ProcessEnv = process.env,
): EngineSettings {
  return { ...resolveEngineSettings(opts, env), env };
}

/** `hf:owner/repo/path/file.gguf` → parts; throws EngineInputError on anything else. */
export function parseHfReference(ref: string): { owner: string; repo: string; file: string } {
  const m = /^hf:([^/]+)\/([^/]+)\/(.+\.gguf)$/i.exec(ref);
  if (!m) {
    throw new EngineInputError(`'${ref}' is not a Hugging Face reference of the form hf:owner/repo/file.gguf`);
  }
  return { owner: m[1], repo: m[2], file: m[3] };
}

export function modelSource(role: ModelRole, settings: EngineSettings): ModelSource {
  if (settings.models === 'tiny') {
    return {
      role,
      set: 'tiny',
      kind: 'tiny',
      reference: `tiny (generator v${TINY_GENERATOR_VERSION})`,
      localPath: path.join(settings.modelDir, tinyModelFileName(role)),
    };
  }
  const reference = settings.modelReferences[role];
  if (reference.startsWith('hf:')) {
    const { file } = parseHfReference(reference);
    return { role, set: 'default', kind: 'hf', reference, localPath: path.join(settings.modelDir, path.basename(file)) };
  }
  return { role, set: 'default', kind: 'path', reference, localPath: path.resolve(reference) };
}

const idCache = new Map<string, string>();

/**
 * Stable id of a role's model, without loading it. Tiny: generator version +
 * seed. A file that is present: `name:size:hash` (sha256 of its first and last
 * MiB, 12 hex digits). A file not yet pulled: its file name.
 */
export function modelIdFor(source: ModelSource): string {
  if (source.kind === 'tiny') return tinyModelId(source.role);
  const name = path.basename(source.localPath);
  if (!existsSync(source.localPath)) return name;
  const st = statSync(source.localPath);
  const key = `${source.localPath}:${st.size}:${st.mtimeMs}`;
  const hit = idCache.get(key);
  if (hit) return hit;
  const id = `${name}:${st.size}:${headTailHash(source.localPath, st.size)}`;
  idCache.set(key, id);
  return id;
}

function headTailHash(file: string, size: number): string {
  const MiB = 1024 * 1024;
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const read = (pos: number, len: number) => {
      const b = Buffer.alloc(len);
      const n = readSync(fd, b, 0, len, pos);
      hash.update(b.subarray(0, n));
    };
    read(0, Math.min(MiB, size));
    if (size > MiB) read(Math.max(MiB, size - MiB), Math.min(MiB, size - MiB));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex').slice(0, 12);
}

export interface ModelDescription {
  role: ModelRole;
  source: string;
  localPath: string;
  present: boolean;
  modelId: string;
  /** Set when the model is missing: exactly what to run. */
  fix?: string;
}

export function describeModel(role: ModelRole, settings: EngineSettings): ModelDescription {
  const source = modelSource(role, settings);
  // Tiny models are written on first load; they are never "missing".
  const present = source.kind === 'tiny' || existsSync(source.localPath);
  const d: ModelDescription = {
    role,
    source: source.reference,
    localPath: source.localPath,
    present,
    modelId: modelIdFor(source),
  };
  if (!present) d.fix = fixFor(source, settings);
  return d;
}

export function fixFor(source: ModelSource, settings: EngineSettings): string {
  if (source.kind === 'path') {
    return `put the GGUF file at ${source.localPath}, or unset ${MODEL_ENV[source.role]} to use the default and run \`${PULL_COMMAND}\``;
  }
  const dirHint = settings.env.STEADYTEXT_MODEL_DIR ? ` (with STEADYTEXT_MODEL_DIR=${settings.modelDir})` : '';
  return `run \`${PULL_COMMAND}\`${dirHint} to download ${source.reference} into ${settings.modelDir}`;
}
