// How many jobs to claim, and which: the one place the local buffer is
// sized. The producer asks it what to claim and tells it what each claim
// brought; the executor tells it how long jobs and start marks take; the
// worker builds it from the settings.
//
// - The buffer holds ahead (beyond the free slots) --prefetch jobs, or with
//   'auto' about AUTO_PREFETCH_MS of work at the measured job time: at least
//   the concurrency (the next job is ready the moment a slot frees), at most
//   AUTO_PREFETCH_MAX. Fast jobs are claimed in large groups (one commit for
//   many), slow ones are not hoarded away from other workers. It is refilled
//   when down to half of that: up to the free slots plus that.
// - While embed jobs are about, the next embed batch is topped up to
//   embedBatchSize by an embed-only claim while the current one runs.
// - Which claimed jobs the claim stamps started_at on (startNow): those that
//   go straight to a free slot; every one, when jobs are so short that a
//   start mark of their own would cost more than a tenth of their run time.
import type { FunctionName } from '../interfaces.ts';
import { AUTO_PREFETCH_MAX, AUTO_PREFETCH_MS } from './settings.ts';

export interface Want {
  /** Jobs of any function to claim now (0: none). */
  any: number;
  /** Embed jobs to claim now to fill the next embed batch (0: none). */
  embed: number;
  /** How many of the claimed jobs start at once (free engine slots, empty buffer): the claim stamps their started_at. */
  startNow: number;
}

/** What the executor holds now. */
export interface BufferState {
  /** Jobs claimed ahead, waiting for a slot. */
  readonly buffered: number;
  /** Of those, embed jobs. */
  readonly bufferedEmbeds: number;
  /** Engine slots free. */
  readonly freeSlots: number;
}

export interface ClaimPolicyOptions {
  concurrency: number;
  /** Jobs held ahead; null: 'auto'. */
  prefetch: number | null;
  batchEmbeddings: boolean;
  embedBatchSize: number;
}

export class ClaimPolicy {
  /** Moving average of one job's engine time, ms (a batch's time shared by its jobs); undefined until one ends. */
  private jobAvgMs?: number;
  /** Moving average of a markStarted round trip, ms; undefined until one returns. */
  private markAvgMs?: number;
  /** Whether embed jobs may be waiting (some were claimed; an embed-only claim has not come back short). */
  private embedsWaiting = false;

  constructor(private readonly o: ClaimPolicyOptions) {}

  /** An engine call ended: one job's share of its time, ms. */
  observeJob(ms: number): void {
    this.jobAvgMs = this.jobAvgMs === undefined ? ms : this.jobAvgMs * 0.9 + ms * 0.1;
  }

  /** A markStarted statement came back after `ms`. */
  observeMark(ms: number): void {
    this.markAvgMs = this.markAvgMs === undefined ? ms : this.markAvgMs * 0.9 + ms * 0.1;
  }

  /** A claim of up to `limit` jobs (`only`: of that function) brought `jobs`. */
  claimed(jobs: readonly { function_name: FunctionName }[], limit: number, only: FunctionName | null): void {
    if (jobs.some((j) => j.function_name === 'embed')) this.embedsWaiting = jobs.length === limit || !only;
    else if (only) this.embedsWaiting = false;
  }

  /** Whether to top the next embed batch up (an embed-only claim) before claiming jobs of any function. */
  topUpEmbeds(want: Want): boolean {
    return this.embedsWaiting && want.embed > 0;
  }

  /** How many jobs to claim now, given what the executor holds. */
  want(b: BufferState): Want {
    const o = this.o;
    const ahead = this.ahead();
    const any = b.buffered <= Math.floor(ahead / 2) ? Math.max(0, b.freeSlots + ahead - b.buffered) : 0;
    let embed = 0;
    if (o.batchEmbeddings && o.embedBatchSize > 1 && b.bufferedEmbeds <= Math.floor(o.embedBatchSize / 2)) {
      embed = o.embedBatchSize - b.bufferedEmbeds;
    }
    // Free slots with jobs in the buffer do not occur: the executor fills a
    // slot from the buffer the moment it frees.
    const startNow = this.stampAhead ? Math.max(any, embed) : b.buffered === 0 ? b.freeSlots : 0;
    return { any, embed, startNow };
  }

  /** Jobs to hold claimed ahead, beyond the free slots. */
  ahead(): number {
    const o = this.o;
    if (o.prefetch !== null) return o.prefetch;
    const ms = this.jobAvgMs;
    if (ms === undefined) return o.concurrency;
    const want = Math.round((o.concurrency * AUTO_PREFETCH_MS) / Math.max(ms, 0.01));
    return Math.min(AUTO_PREFETCH_MAX, Math.max(o.concurrency, want));
  }

  /**
   * True when jobs are so short that waiting for markStarted before each
   * would cost more than a tenth of the job's own time: the claim then
   * stamps started_at on every job it takes, so no start waits on the
   * database. The price: should this worker die, the jobs it still held
   * claimed ahead (about AUTO_PREFETCH_MS of such short work) count a failed
   * attempt, as running ones do. Slower jobs are marked one start at a time,
   * exactly.
   */
  get stampAhead(): boolean {
    return this.jobAvgMs !== undefined && this.markAvgMs !== undefined && this.jobAvgMs < 10 * this.markAvgMs;
  }
}
