// What becomes of each job the worker held, and the counts of it: a result
// stored (through the completer's group commit), a failure recorded by the
// retry rule (failJob), a late result discarded (the job was cancelled,
// reclaimed or released meanwhile), or, at shutdown, the job released to
// pending (releaseJobs). Every outcome lands here; the worker's stats, its
// stop line and /metrics read the counts from here.
import type pg from 'pg';
import { EngineInputError, ModelNotFoundError } from '../engine/types.ts';
import type { FunctionName } from '../interfaces.ts';
import { failJob } from '../db/jobs/failJob.ts';
import { releaseJobs } from '../db/jobs/releaseJobs.ts';
import { withRetries } from '../postgres/withRetries.ts';
import { Completer } from './completer.ts';
import { JobInputError } from './execute.ts';
import { Cancelled, runMs, Shutdown, TimedOut, UnstorableResult, unstorableText, waitedMs, type HeldJob } from './heldJob.ts';
import type { WorkerMetrics } from './metrics.ts';

export interface OutcomesOptions {
  /** The worker's pool; undefined before its start and after its stop. */
  pool(): pg.Pool | undefined;
  workerId: string;
  /** The retry rule for jobs whose row sets no max_retries (failJob). */
  maxRetries: number;
  retryBackoffBaseMs: number;
  retryBackoffMaxMs: number;
  /** The model id that produced a job's result (stored with it for the cache). */
  modelId(fn: FunctionName): string | null;
  metrics(): WorkerMetrics | undefined;
  /** The job's outcome is recorded: the worker no longer holds it. */
  forget(h: HeldJob): void;
  /** A retry became due: claim again. */
  wake(): void;
  log(level: 'info' | 'debug', line: string): void;
}

export class Outcomes {
  jobsCompleted = 0;
  jobsFailed = 0;
  /** Late results thrown away (job cancelled, reclaimed, or released meanwhile). */
  resultsDiscarded = 0;
  /** Jobs sent back to pending at shutdown. */
  released = 0;
  private readonly completer: Completer;
  /** Outcomes being recorded (complete or fail), for the graceful stop. */
  private readonly recording = new Set<Promise<void>>();
  private readonly wakeTimers = new Set<NodeJS.Timeout>();

  constructor(private readonly o: OutcomesOptions) {
    this.completer = new Completer(() => o.pool(), o.workerId);
  }

  /** A job's engine call ended: record its outcome (the slot already runs the next job). */
  record(h: HeldJob, outcome: { result: string } | { error: unknown }): void {
    const p = ('result' in outcome ? this.succeed(h, outcome.result) : this.fail(h, outcome.error)).catch((err) =>
      this.o.log('info', `job ${h.job.request_id}: ${(err as Error).message}`),
    );
    this.recording.add(p);
    void p.finally(() => this.recording.delete(p));
  }

  /** A job dropped without a result of its own (cancelled, or no longer this worker's claim). */
  discarded(h: HeldJob): void {
    this.resultsDiscarded++;
    this.o.metrics()?.jobSettled(h.job.function_name, 'discarded', runMs(h));
  }

  /** True while an outcome is being recorded. */
  get busy(): boolean {
    return this.recording.size > 0;
  }

  /** Resolves once the outcomes being recorded now are. */
  async recorded(): Promise<void> {
    await Promise.allSettled([...this.recording]);
  }

  /** Shutdown: every result not yet sent settles unsent; its job stays held, to be released. */
  abandon(): void {
    this.completer.abandon(new Shutdown());
  }

  /** Shutdown: jobs back to pending, no retry counted (counted in `released`); others reclaim them should it fail. */
  async release(ids: string[]): Promise<void> {
    const pool = this.o.pool();
    if (ids.length === 0 || !pool) return;
    try {
      this.released += await withRetries(() => releaseJobs(pool, this.o.workerId, ids));
    } catch (err) {
      this.o.log('info', `could not release ${ids.length} job(s): ${(err as Error).message} (they will be reclaimed)`);
    }
  }

  /** No more wake-ups for retries (the worker stopped). */
  close(): void {
    for (const t of this.wakeTimers) clearTimeout(t);
    this.wakeTimers.clear();
  }

  private async succeed(h: HeldJob, result: string): Promise<void> {
    const { job } = h;
    // A result PostgreSQL cannot store would fail the grouped statement: fail
    // this job on its own, before it gets there.
    const unstorable = unstorableText(result);
    if (unstorable) return this.fail(h, new UnstorableResult(unstorable, true));
    const counted = await this.completer.store({
      requestId: job.request_id,
      attempt: job.attempt,
      result,
      modelId: this.o.modelId(job.function_name),
      waitedMs: waitedMs(h),
    });
    if (counted instanceof Error) {
      if (counted instanceof Shutdown) return; // never sent: stays held, stop() releases it to pending
      this.o.log('info', `job ${job.request_id}: could not store the result: ${counted.message}`);
      // Not left 'processing' forever: a result the database refuses fails
      // the job at once; a lost connection goes through the retry logic.
      return this.fail(
        h,
        counted instanceof UnstorableResult ? counted : new Error(`could not store the result: ${counted.message}`),
      );
    }
    this.o.forget(h);
    if (counted) {
      this.jobsCompleted++;
      this.o.metrics()?.jobSettled(job.function_name, 'completed', runMs(h));
      this.o.log('debug', `job ${job.request_id} completed in ${Math.round(runMs(h))} ms`);
    } else {
      this.discarded(h);
      this.o.log('debug', `job ${job.request_id} result discarded (no longer ours: cancelled or reclaimed)`);
    }
  }

  private async fail(h: HeldJob, err: unknown): Promise<void> {
    const { job } = h;
    if (err instanceof Shutdown) return; // stays held: stop() releases it to pending
    if (err instanceof Cancelled) {
      this.o.forget(h);
      this.discarded(h); // the row is 'cancelled' (checked before the abort)
      return;
    }
    // A missing model is not transient: a retry would fail the same way.
    const retryable = !(
      err instanceof EngineInputError ||
      err instanceof ModelNotFoundError ||
      err instanceof JobInputError ||
      (err instanceof UnstorableResult && err.permanent) ||
      (err instanceof TimedOut && err.ownWork)
    );
    const full = err instanceof TimedOut ? err.message : err instanceof Error ? err.message || err.name : String(err);
    // The job's error is read by the tenant who asked: where the engine says
    // what it may see (an inference server's answer without its URL), that is
    // stored and the operator's full text goes to the log.
    const publicMessage = (err as { publicMessage?: unknown } | null)?.publicMessage;
    const message = typeof publicMessage === 'string' && publicMessage !== '' ? publicMessage : full;
    if (message !== full) this.o.log('info', `job ${job.request_id} (${job.function_name}, attempt ${job.attempt}): ${full}`);
    const o = this.o;
    try {
      const outcome = await withRetries(
        () =>
          failJob(o.pool()!, job.request_id, o.workerId, job.attempt, {
            error: message,
            defaultMaxRetries: o.maxRetries,
            backoffBaseMs: o.retryBackoffBaseMs,
            backoffMaxMs: o.retryBackoffMaxMs,
            retryable,
            waitedMs: waitedMs(h),
          }),
        { attempts: 10 },
      );
      o.metrics()?.jobSettled(
        job.function_name,
        !outcome.counted ? 'discarded' : outcome.status === 'failed' ? 'failed' : 'retried',
        runMs(h),
      );
      if (!outcome.counted) {
        this.resultsDiscarded++;
      } else if (outcome.status === 'failed') {
        this.jobsFailed++;
        // At the default level: a job that failed for good is news to whoever runs the worker.
        o.log('info', `job ${job.request_id} (${job.function_name}) failed: ${message}`);
      } else {
        const inSeconds = Math.max(0, (outcome.runAt!.getTime() - Date.now()) / 1000).toFixed(1);
        o.log('info', `job ${job.request_id} (${job.function_name}) failed, retry ${outcome.retryCount} in ${inSeconds} s: ${message}`);
        this.wakeAt(outcome.runAt!);
      }
    } catch (e) {
      // Left 'processing': the orphan check releases it once it is no longer held.
      o.log('info', `job ${job.request_id}: could not record the failure: ${(e as Error).message}`);
    } finally {
      o.forget(h);
    }
  }

  /** Claims again when a retry's backoff ends, rather than at the next poll. */
  private wakeAt(at: Date): void {
    const t = setTimeout(() => {
      this.wakeTimers.delete(t);
      this.o.wake();
    }, Math.max(0, at.getTime() - Date.now()) + 5);
    this.wakeTimers.add(t);
  }
}
