// Loads the engine the worker runs jobs on, through src/engine/ only.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Engine, EngineFactory, ModelRole } from '../engine/types.ts';
import type { HttpBackends } from '../engine/httpEngine.ts';
import type { WorkerSettings } from './settings.ts';

type LoadEngine = (opts?: {
  models?: 'default' | 'tiny';
  modulePath?: string;
  threads?: number;
  servers?: HttpBackends;
  gpu?: 'off' | 'auto' | 'cuda' | 'vulkan';
}) => Promise<Engine>;

/** A module whose default export is an EngineFactory (STEADYTEXT_ENGINE_MODULE / --engine-module). */
export async function importEngineModule(modulePath: string): Promise<Engine> {
  const url = /^(file|data):/.test(modulePath) ? modulePath : pathToFileURL(path.resolve(modulePath)).href;
  const mod = (await import(url)) as { default?: EngineFactory };
  if (typeof mod.default !== 'function') {
    throw new Error(`engine module ${modulePath} has no default export (an EngineFactory)`);
  }
  return mod.default();
}

/** The engine per the settings: loadEngine() from src/engine/index.ts. */
export async function loadWorkerEngine(
  s: Pick<WorkerSettings, 'models' | 'engineModule' | 'threads'> & Partial<Pick<WorkerSettings, 'servers' | 'gpu' | 'log' | 'logLevel'>>,
): Promise<Engine> {
  // index.ts beside the sources, index.js in the build (dist/)
  const index = new URL(`../engine/index${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url);
  if (existsSync(fileURLToPath(index))) {
    const { loadEngine } = (await import(index.href)) as { loadEngine: LoadEngine };
    const engine = await loadEngine({ models: s.models, modulePath: s.engineModule, threads: s.threads, servers: s.servers, gpu: s.gpu });
    logRefusals(engine, s);
    return engine;
  }
  // src/engine/index.ts not present (partial checkout): only an engine module can serve.
  if (s.engineModule) return importEngineModule(s.engineModule);
  throw new Error('no engine: src/engine/index.ts is missing and no --engine-module was given');
}

export const MODEL_ROLES: readonly ModelRole[] = ['generation', 'embedding', 'reranking'];

/** Model id per role, for the roles the engine serves (modelId throws or is empty for others). */
export function engineModelIds(engine: Engine): Partial<Record<ModelRole, string>> {
  const ids: Partial<Record<ModelRole, string>> = {};
  for (const role of MODEL_ROLES) {
    try {
      const id = engine.modelId(role);
      if (id) ids[role] = id;
    } catch {
      // role not served
    }
  }
  return ids;
}

/** At start, names the job types a configured server cannot serve (they fail at once, with the reason). */
function logRefusals(engine: Engine, s: Partial<Pick<WorkerSettings, 'log' | 'logLevel'>>): void {
  const r = (engine as { refusals?: () => Array<{ function: string; reason: string }> }).refusals?.() ?? [];
  if (r.length === 0 || s.logLevel === undefined || s.logLevel === 'silent') return;
  for (const { function: fn, reason } of r) {
    const line = `[steadytext-worker] ${fn} jobs will fail on this worker: ${reason}`;
    if (s.log) s.log(line);
    else process.stderr.write(line + '\n');
  }
}
