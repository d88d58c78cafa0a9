// Programmatic entry: `steadytext worker` and `steadytext up` both start a
// worker through startWorker().
import { Worker } from './worker.ts';
import { loadSettings, resolveSettings, type WorkerFlags, type WorkerSettings } from './settings.ts';

export { Worker, type WorkerStats } from './worker.ts';
export {
  DEFAULTS,
  GUC_NAMES,
  SettingsError,
  loadSettings,
  parseDuration,
  resolveConnection,
  resolveSettings,
  type LogLevel,
  type WorkerFlags,
  type WorkerGucs,
  type WorkerSettings,
} from './settings.ts';

/**
 * Starts a worker. Given full WorkerSettings (from loadSettings/resolveSettings)
 * it uses them as they are; given WorkerFlags it resolves them first
 * (flags > env > GUCs > defaults), reading the GUCs from the database.
 * Resolves once the worker is registered and listening.
 */
export async function startWorker(settings: WorkerSettings | WorkerFlags): Promise<Worker> {
  const full = isFull(settings) ? settings : await loadSettings(settings);
  const worker = new Worker(full);
  await worker.start();
  return worker;
}

function isFull(s: WorkerSettings | WorkerFlags): s is WorkerSettings {
  return 'connection' in s && typeof (s as WorkerSettings).pollIntervalMs === 'number';
}
