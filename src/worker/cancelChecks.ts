// The worker's half of cancel. steadytext_cancel_async marks the row
// 'cancelled' and sends NOTIFY steadytext_cancelled with the request id; any
// login can send that NOTIFY, so a job this worker holds is aborted (or
// dropped from the buffer) only when its row says it is cancelled under this
// worker's claim (src/db/jobs/cancelledJobs.ts). Checks that arrive while one is
// in flight go out together in the next statement.
import { cancelledJobs } from '../db/jobs/cancelledJobs.ts';
import type { Queryable } from '../db/queryable.ts';
import { withRetries } from '../postgres/withRetries.ts';
import type { HeldJob } from './heldJob.ts';

export interface CancelChecksOptions {
  /** The worker's pool; undefined before its start and after its stop. */
  pool(): Queryable | undefined;
  workerId: string;
  /** The job this worker holds under that request id, if any. */
  held(requestId: string): HeldJob | undefined;
  /** The row says cancelled under this claim: abort the job or drop it from the buffer. */
  cancel(requestId: string): void;
  log(line: string): void;
}

export class CancelChecks {
  /** Jobs named by a NOTIFY, not yet checked. */
  private readonly named = new Set<string>();
  private checking?: Promise<void>;

  constructor(private readonly o: CancelChecksOptions) {}

  /** A steadytext_cancelled NOTIFY named this request: check its row, if this worker holds it. */
  check(requestId: string): void {
    if (!this.o.held(requestId)) return;
    this.named.add(requestId);
    this.checking ??= this.run().finally(() => (this.checking = undefined));
  }

  private async run(): Promise<void> {
    try {
      while (this.named.size > 0) {
        const claims = [...this.named]
          .map((id) => this.o.held(id))
          .filter((h): h is HeldJob => h !== undefined && h.state !== 'storing' && !h.controller.signal.aborted)
          .map((h) => ({ requestId: h.job.request_id, attempt: h.job.attempt }));
        this.named.clear();
        const pool = this.o.pool();
        if (!pool || claims.length === 0) continue;
        const cancelled = await withRetries(() => cancelledJobs(pool, this.o.workerId, claims));
        for (const id of cancelled) this.o.cancel(id);
      }
    } catch (err) {
      this.o.log(`cancel check failed: ${(err as Error).message}`);
    }
  }
}
