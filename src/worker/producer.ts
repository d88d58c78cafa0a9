// The producer: claims jobs ahead into the executor's small bounded buffer,
// so the engine never waits on a claim round trip. It claims when the buffer
// runs low and every time it is woken (NOTIFY steadytext_new_job, a slot
// freed, a retry became due, a reclaim); polling is only the fallback. The
// claimed jobs are 'processing' under this worker from the claim on, so the
// heartbeat protects them exactly like running ones, and a lost worker's
// buffered jobs are reclaimed with its running ones (reclaimStale).
//
// Between its own claims (so no claim of this worker is in flight) it also
// runs the orphan check: claims the worker holds in the database but not in
// memory (a claim reply lost with the connection) go back to pending.
//
// How many jobs to claim, and which, the claim policy says (claimPolicy.ts).
import type { FunctionName } from '../interfaces.ts';
import type { ClaimedJob } from '../db/jobs/claimJobs.ts';
import { withRetries } from '../postgres/withRetries.ts';
import type { BufferState, ClaimPolicy } from './claimPolicy.ts';
import { WakeSignal } from './wakeSignal.ts';

export interface ProducerOptions {
  claim(limit: number, only: FunctionName | null, startNow: number): Promise<ClaimedJob[]>;
  /** Sizes each claim. */
  policy: ClaimPolicy;
  /** What the executor holds right now. */
  buffer(): BufferState;
  /** Claimed jobs, for the buffer. */
  accept(jobs: ClaimedJob[]): void;
  releaseOrphans(): Promise<void>;
  orphanCheckEveryMs: number;
  pollIntervalMs: number;
  log(line: string): void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Producer {
  private stopped = false;
  private readonly wakeSignal = new WakeSignal();
  private orphanCheckAt = 0;
  private done?: Promise<void>;

  constructor(private readonly o: ProducerOptions) {}

  start(): void {
    this.done = this.loop();
  }

  /** Makes the producer look for jobs now. */
  wake(): void {
    this.wakeSignal.wake();
  }

  /** No more claims; resolves once the claim in flight (if any) is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.done;
  }

  /** One claim into the buffer; true when it came back full (more may be waiting). */
  private async claim(limit: number, only: FunctionName | null, startNow: number): Promise<boolean> {
    const jobs = await withRetries(() => this.o.claim(limit, only, startNow));
    this.o.policy.claimed(jobs, limit, only);
    this.o.accept(jobs);
    return jobs.length === limit;
  }

  private async loop(): Promise<void> {
    let errors = 0;
    while (!this.stopped) {
      if (Date.now() >= this.orphanCheckAt) {
        this.orphanCheckAt = Date.now() + this.o.orphanCheckEveryMs;
        await this.o.releaseOrphans();
        if (this.stopped) break;
      }
      // An embed batch is topped up first (while embed jobs are about), then
      // the buffer is refilled with jobs of any function.
      let full = false;
      try {
        const { policy } = this.o;
        const forEmbed = policy.want(this.o.buffer());
        if (policy.topUpEmbeds(forEmbed)) full = (await this.claim(forEmbed.embed, 'embed', forEmbed.startNow)) || full;
        const forAny = policy.want(this.o.buffer());
        if (forAny.any > 0) full = (await this.claim(forAny.any, null, forAny.startNow)) || full;
        errors = 0;
      } catch (err) {
        errors++;
        this.o.log(`claim failed: ${(err as Error).message}`);
        await sleep(Math.min(30_000, 500 * 2 ** Math.min(errors, 6)));
        continue;
      }
      if (full) continue; // more may be waiting
      await this.wakeSignal.wait(this.o.pollIntervalMs);
    }
  }
}
