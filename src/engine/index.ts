// The engine's one door. The worker calls loadEngine() and sees only the
// Engine interface (./types.ts).
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { engineDevice, LlamaEngine } from './llamaEngine.ts';
import {
  describeModel,
  MODEL_ROLES,
  resolveSettings,
  type GpuMode,
  type ModelDescription,
  type ModelSet,
} from './modelSources.ts';
import { EngineError, type Engine, type EngineFactory } from './types.ts';
import { HttpEngine, RoutedEngine, type HttpBackends } from './httpEngine.ts';
import { resolveOne, SETTINGS } from '../settings.ts';
import { TINY_OUTPUT_LABEL } from './tinyModels.ts';

export * from './types.ts';
export {
  HTTP_DIALECTS,
  HttpEngine,
  listModels,
  refusal,
  RoutedEngine,
  servedFunctions,
  type HttpBackend,
  type HttpBackends,
  type HttpDialect,
} from './httpEngine.ts';
export { HttpClient, HttpBackendError } from './httpClient.ts';
export { LlamaEngine } from './llamaEngine.ts';
export {
  DEFAULT_MODELS,
  DEFAULT_THREADS,
  GPU_MODES,
  MODEL_ENV,
  PULL_COMMAND,
  resolveSettings,
  type EngineSettings,
  type GpuMode,
  type ModelDescription,
  type ModelSet,
} from './modelSources.ts';

/**
 * Each option wins over its environment variable; unset options come from the
 * environment, else the defaults of the one settings table (src/settings.ts,
 * docs/worker.md "Settings").
 */
export interface LoadEngineOptions {
  /** Model set ($STEADYTEXT_MODELS). */
  models?: ModelSet;
  /** A module whose default export is an EngineFactory ($STEADYTEXT_ENGINE_MODULE). */
  modulePath?: string;
  /** CPU threads per context ($STEADYTEXT_THREADS). */
  threads?: number;
  /** Model cache dir ($STEADYTEXT_MODEL_DIR). */
  modelDir?: string;
  /** Jobs of one role at once ($STEADYTEXT_ENGINE_PARALLEL). */
  parallel?: number;
  /** Generation contexts the parallel sequences are spread over, at most `parallel` ($STEADYTEXT_ENGINE_CONTEXTS). */
  contexts?: number;
  /** Local device: 'off' (CPU), 'auto', 'cuda', 'vulkan' ($STEADYTEXT_GPU). */
  gpu?: GpuMode;
  /** Roles served by inference servers (docs/engine.md, "Inference servers"); the others run locally. */
  servers?: HttpBackends;
}

/**
 * The engine the worker runs jobs on. Models load lazily on first use, so a
 * worker serving only embeddings never needs the generation model.
 */
export async function loadEngine(opts: LoadEngineOptions = {}): Promise<Engine> {
  const modulePath = resolveOne(SETTINGS.engineModule, { flags: { engineModule: opts.modulePath } }).value;
  if (modulePath) {
    const url = /^[a-z]+:/i.test(modulePath) ? modulePath : pathToFileURL(path.resolve(modulePath)).href;
    const mod = (await import(url)) as { default?: EngineFactory };
    if (typeof mod.default !== 'function') {
      throw new EngineError(`STEADYTEXT_ENGINE_MODULE ${modulePath} has no default export (an EngineFactory)`);
    }
    if (opts.servers && Object.keys(opts.servers).length > 0) {
      throw new EngineError('an engine module cannot be combined with inference servers (--*-server)');
    }
    return mod.default();
  }
  // Models load lazily: the local engine costs nothing for roles a server takes.
  const settings = resolveSettings(opts);
  // The device is part of every model id: resolve it before the engine serves.
  const local = new LlamaEngine(settings, await engineDevice(settings.gpu));
  if (opts.servers && Object.values(opts.servers).some(Boolean)) {
    return new RoutedEngine(await HttpEngine.connect(opts.servers), local);
  }
  return local;
}

export interface ModelsDescription {
  set: ModelSet;
  modelDir: string;
  threads: number;
  models: ModelDescription[];
  /** True when every role's model is present (or tiny). */
  ready: boolean;
}

/** What `steadytext up` prints at start: set, each role's source, presence, and what to run if missing. */
export function describeModels(opts: Omit<LoadEngineOptions, 'modulePath'> = {}): ModelsDescription {
  const settings = resolveSettings(opts);
  const models = MODEL_ROLES.map((role) => describeModel(role, settings));
  return {
    set: settings.models,
    modelDir: settings.modelDir,
    threads: settings.threads,
    models,
    ready: models.every((m) => m.present),
  };
}

/** describeModels() as lines of text, for logs. */
export function formatModelsDescription(d: ModelsDescription): string {
  const lines = [`models: ${d.set} set in ${d.modelDir} (threads ${d.threads})`];
  if (d.set === 'tiny') lines.push(`  ${TINY_OUTPUT_LABEL}`);
  for (const m of d.models) {
    lines.push(`  ${m.role.padEnd(10)} ${m.present ? 'present' : 'MISSING'}  ${m.source}  [${m.modelId}]`);
    if (m.fix) lines.push(`             -> ${m.fix}`);
  }
  return lines.join('\n');
}
