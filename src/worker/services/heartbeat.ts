// The heartbeat: every heartbeat interval the worker refreshes its row's
// last_heartbeat and current_jobs (src/db/workers/heartbeat.ts). Other workers reclaim
// the jobs of a worker whose heartbeats stop (reclaim.ts). A row found
// missing (deleted by hand) is registered again, unless the worker is
// stopping; once it is, each beat says 'stopping'. The worker's stop sends
// one beat at once (runNow) and keeps beating through the shutdown grace, so
// the jobs still running are not reclaimed meanwhile.
import { heartbeat } from '../../db/workers/heartbeat.ts';
import type { Queryable } from '../../db/queryable.ts';
import { withRetries } from '../../postgres/withRetries.ts';
import { PeriodicService, type PoolServiceOptions } from './periodicService.ts';

export interface HeartbeatResult {
  /** current_jobs as sent: jobs on the engine. */
  currentJobs: number;
  /** False when the row was missing (registered again unless stopping) or stopped. */
  found: boolean;
}

export interface HeartbeatOptions extends PoolServiceOptions<HeartbeatResult> {
  workerId: string;
  /** Jobs on the engine now. */
  currentJobs(): number;
  /** True once the worker's stop began. */
  stopping(): boolean;
  /** Registers the worker again (registerWorker), its row having gone missing. */
  register(db: Queryable): Promise<void>;
}

export class HeartbeatService extends PeriodicService<HeartbeatResult, HeartbeatOptions> {
  readonly name = 'heartbeat';

  protected async runOnce(): Promise<HeartbeatResult | undefined> {
    const pool = this.o.pool();
    if (!pool) return undefined;
    const stopping = this.o.stopping();
    const state = { currentJobs: this.o.currentJobs(), status: stopping ? ('stopping' as const) : undefined };
    const found = await withRetries(() => heartbeat(pool, this.o.workerId, state));
    if (!found && !stopping) {
      this.o.log('worker row missing; registering again');
      await this.o.register(pool);
    }
    return { currentJobs: state.currentJobs, found };
  }
}
