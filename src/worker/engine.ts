// Loads the engine the worker runs jobs on, through src/engine/ only.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Engine, EngineFactory, ModelRole, Refusal } from '../engine/types.ts';
import type { HttpBackends } from '../engine/httpEngine.ts';
import type { WorkerSettings } from './settings.ts';
import { FUNCTION_NAMES, type FunctionName } from '../interfaces.ts';

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
  s: Pick<WorkerSettings, 'models' | 'engineModule' | 'threads'> & Partial<Pick<WorkerSettings, 'servers' | 'gpu'>>,
): Promise<Engine> {
  // index.ts beside the sources, index.js in the build (dist/)
  const index = new URL(`../engine/index${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url);
  if (existsSync(fileURLToPath(index))) {
    const { loadEngine } = (await import(index.href)) as { loadEngine: LoadEngine };
    return loadEngine({ models: s.models, modulePath: s.engineModule, threads: s.threads, servers: s.servers, gpu: s.gpu });
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

/** A job type the engine cannot serve, and why (an inference server that cannot constrain it, a model missing here). */
export type { Refusal };

/**
 * The job types the engine refuses, from its optional refusals(): the HTTP
 * engine's (a dialect that cannot constrain a type), the local engine's (a
 * role whose model file is not here and will not be downloaded); none for
 * engines without one.
 * The worker does not claim these (claimJobs' `served`): they stay pending
 * for a worker whose engine serves them.
 */
export function engineRefusals(engine: Engine): Refusal[] {
  const r = (engine as { refusals?: () => Refusal[] }).refusals?.() ?? [];
  const seen = new Set<FunctionName>();
  return r.filter((x) => FUNCTION_NAMES.includes(x.function) && !seen.has(x.function) && seen.add(x.function));
}
