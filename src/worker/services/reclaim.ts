// The reclaim (River's rescuer): every heartbeat interval each live worker
// takes back the jobs of workers whose heartbeats stopped
// (src/db/jobs/reclaimStale.ts: running ones count a failed attempt, ones only claimed
// ahead go back with none) and marks those workers 'dead'. A worker's own
// pass never takes its own jobs: its heartbeat was only late. The same pass
// takes back the pipeline rows lost workers held
// (src/db/pipelines/reclaimPipelineRows.ts).
import type { ReclaimedJob } from '../../db/jobs/reclaimStale.ts';
import { reclaimStale } from '../../db/jobs/reclaimStale.ts';
import { reclaimPipelineRows } from '../../db/pipelines/reclaimPipelineRows.ts';
import { withRetries } from '../../postgres/withRetries.ts';
import { PeriodicService, type PoolServiceOptions } from './periodicService.ts';

export interface ReclaimOptions extends PoolServiceOptions<ReclaimedJob[]> {
  workerId: string;
  /** Retries of a job whose row sets none (a reclaimed running job past them ends 'failed'). */
  maxRetries: number;
  /** Pipeline rows of dead workers went back to pending (how many; only called when some did). */
  onPipelineRows?(rows: number): void;
}

export class ReclaimService extends PeriodicService<ReclaimedJob[], ReclaimOptions> {
  readonly name = 'reclaim';

  /** The jobs taken back by this pass (often none). */
  protected async runOnce(): Promise<ReclaimedJob[] | undefined> {
    const pool = this.o.pool();
    if (!pool) return undefined;
    const jobs = await withRetries(() => reclaimStale(pool, this.o.maxRetries, { self: this.o.workerId }));
    if (jobs.length > 0) {
      const lost = [...new Set(jobs.map((j) => j.lost_worker))].join(', ');
      const ran = jobs.filter((j) => j.started).length;
      this.o.log(
        `reclaimed ${jobs.length} job(s) from lost worker(s) ${lost}: ${ran} were running (a failed attempt each), ${jobs.length - ran} only claimed ahead (no retry counted)`,
      );
    }
    // The jobs are taken back whatever becomes of the pipeline rows' statement.
    try {
      const rows = await withRetries(() => reclaimPipelineRows(pool, { self: this.o.workerId }));
      if (rows > 0) {
        this.o.log(`reclaimed ${rows} pipeline row(s) from lost worker(s)`);
        this.o.onPipelineRows?.(rows);
      }
    } catch (err) {
      this.o.log(`reclaim of pipeline rows failed: ${(err as Error).message}`);
    }
    return jobs;
  }
}
