// The optional result retention (--result-retention; default off): every
// result cleanup interval, delete completed, failed and cancelled requests
// older than the retention, in batches (src/db/queue/cleanupResults.ts). Several
// workers may do it at once: each batch skips rows another one holds. A stop
// ends the run after its current batch.
import { cleanupResults, type CleanupResult } from '../../db/queue/cleanupResults.ts';
import { PeriodicService, type PoolServiceOptions } from './periodicService.ts';

export interface RetentionOptions extends PoolServiceOptions<CleanupResult> {
  /** Requests finished longer ago than this are deleted. */
  olderThanMs: number;
  /** Rows per statement. */
  batchSize: number;
}

export class RetentionService extends PeriodicService<CleanupResult, RetentionOptions> {
  readonly name = 'result retention';

  protected async runOnce(): Promise<CleanupResult | undefined> {
    const pool = this.o.pool();
    if (!pool || this.stopRequested) return undefined;
    const olderThanMs = this.o.olderThanMs;
    const r = await cleanupResults(pool, { olderThanMs, batchSize: this.o.batchSize, shouldStop: () => this.stopRequested });
    if (r.deleted > 0) this.o.log(`result retention: deleted ${r.deleted} finished requests older than ${olderThanMs / 1000} s (${r.batches.length} batches)`);
    return r;
  }

  protected override failed(err: Error): void {
    if (!this.stopRequested) this.o.log(`result retention failed (will retry): ${err.message}`);
  }
}
