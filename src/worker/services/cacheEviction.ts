// The cache eviction: every cache evict interval the worker runs the SQL
// side's steadytext_cache_evict() (size and age limits live there). Where the
// function is not installed, the worker says so once and stops trying.
import { evictCache } from '../../db/queue/evictCache.ts';
import { PeriodicService, type PoolServiceOptions } from './periodicService.ts';

export interface CacheEvictionOptions extends PoolServiceOptions<number> {
  /** The debug log (a line per run that evicted something). */
  debug(line: string): void;
}

export class CacheEvictionService extends PeriodicService<number, CacheEvictionOptions> {
  readonly name = 'cache eviction';
  /** steadytext_cache_evict() is not installed: eviction is off. */
  private unavailable = false;

  /** Cache entries evicted by this run. */
  protected async runOnce(): Promise<number | undefined> {
    const pool = this.o.pool();
    if (this.unavailable || !pool) return undefined;
    const n = await evictCache(pool);
    if (n > 0) this.o.debug(`evicted ${n} cache entries`);
    return n;
  }

  protected override failed(err: Error): void {
    if ((err as { code?: string }).code === '42883') {
      this.unavailable = true;
      this.o.log('steadytext_cache_evict() is not installed; cache eviction off');
    } else {
      super.failed(err);
    }
  }
}
