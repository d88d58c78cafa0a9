// The optional result retention the workers apply on a timer
// (STEADYTEXT_WORKER_RESULT_RETENTION / --result-retention; default off):
// every STEADYTEXT_WORKER_RESULT_CLEANUP_INTERVAL, delete completed, failed
// and cancelled requests older than the retention, in batches. Several
// workers may do it at once: each batch skips rows another one holds.
import type pg from 'pg';
import { cleanupResults } from '../db/cleanupResults.ts';
import type { WorkerSettings } from './settings.ts';

export interface RetentionHooks {
  pool: () => pg.Pool | undefined;
  stopping: () => boolean;
  log: (line: string) => void;
}

/** The retention timer, or undefined when retention is off. One run at a time. */
export function startRetention(settings: WorkerSettings, hooks: RetentionHooks): NodeJS.Timeout | undefined {
  const olderThanMs = settings.resultRetentionMs;
  if (olderThanMs === undefined) return undefined;
  let busy = false;
  const run = async () => {
    const pool = hooks.pool();
    if (busy || !pool || hooks.stopping()) return;
    busy = true;
    try {
      const r = await cleanupResults(pool, {
        olderThanMs,
        batchSize: settings.resultCleanupBatchSize,
        shouldStop: hooks.stopping,
      });
      if (r.deleted > 0) hooks.log(`result retention: deleted ${r.deleted} finished requests older than ${olderThanMs / 1000} s (${r.batches.length} batches)`);
    } catch (err) {
      if (!hooks.stopping()) hooks.log(`result retention failed (will retry): ${(err as Error).message}`);
    } finally {
      busy = false;
    }
  };
  return setInterval(() => void run(), settings.resultCleanupIntervalMs);
}
