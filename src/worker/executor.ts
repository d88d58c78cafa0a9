// The executor: keeps the engine busy. Takes jobs from the local buffer the
// producer fills, runs up to `concurrency` engine calls at once, and hands
// each job's outcome on the moment its engine call ends: the slot is free
// again before the result is committed, so while one job's result is being
// stored the next job is already on the engine.
//
// A job starts only once its row says so: the claim stamps started_at on the
// jobs that go straight to a free slot; a job claimed ahead has none (NULL)
// and is marked started (markStarted, one statement for the jobs starting
// together) just before its engine call. So when this worker dies, the jobs
// it was running count as failed attempts and the ones still in its buffer
// do not (reclaimStale). The mark also finds out a buffered job that is no
// longer this worker's claim (cancelled, or reclaimed while its heartbeat was
// late): that one is dropped unstarted instead of run for nothing.
//
// Embed micro-batching: an engine call that starts with an embed job takes
// every other sound embed job in the buffer with it, up to embedBatchSize,
// whatever the concurrency and however many claims brought them in; the
// batch is one engine.embed call in one slot.
//
// Side work (the pipeline runner's batches, pipelines/runner.ts) takes a slot
// only when no queue job waits in the buffer: queue work goes first.
import type { Engine } from '../engine/types.ts';
import { writeResult } from '../jobTypes.ts';
import { claimOrder } from '../db/jobs/claimJobs.ts';
import type { ClaimPolicy } from './claimPolicy.ts';
import { batchableEmbed, executeEmbedBatch, executeJob } from './execute.ts';
import { outgrewItsTime, TimedOut, type HeldJob } from './heldJob.ts';

const LOCKED_RETRY_MS = 200;

/** Work besides the queue's that takes an engine slot (pipeline batches): it starts only when no queue job waits for the slot. */
export interface SideWork {
  /** True when a unit is claimed and may start. */
  hasWaiting(): boolean;
  /** Starts it; resolves when its engine time is over (the slot is free again). */
  startNext(): Promise<void>;
}

export interface ExecutorOptions {
  engine: Engine;
  concurrency: number;
  batchEmbeddings: boolean;
  embedBatchSize: number;
  /** The worker's time limit when the row sets none. */
  timeoutSeconds: number;
  /** Told each job's engine time and each start mark's round trip (it sizes the claims). */
  policy: ClaimPolicy;
  /** A job's engine call ended: its result, or why not (error, or its abort reason). */
  onOutcome(h: HeldJob, outcome: { result: string } | { error: unknown }): void;
  /** A slot freed or the buffer shrank: the producer may want to claim. */
  onTake(): void;
  /**
   * Stamps started_at on jobs about to start (markStarted): the `started`
   * ones may start; `busy` ones (row locked by another session) are tried
   * again shortly; the rest are no longer this worker's.
   */
  markStarted(jobs: HeldJob[]): Promise<{ started: Set<string>; busy: Set<string> }>;
  /** A job about to start turned out to be no longer this worker's claim: dropped unstarted. */
  onLost(h: HeldJob): void;
  /** Side work for slots the queue leaves free (the pipeline runner). */
  side?: SideWork;
  log(line: string): void;
}

/** Settles like `p`, or rejects with the signal's reason as soon as it aborts. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export class Executor {
  /** Claimed, not started; kept in claim order (best first). */
  private buffer: HeldJob[] = [];
  /** Engine calls in flight (an embed batch is one), side work's included. */
  private slots = 0;
  /** Of those, side work's. */
  private sideSlots = 0;
  private readonly calls = new Set<Promise<void>>();
  private paused = false;
  /** Jobs whose mark found their row locked, each batch with the timer that puts them back in the buffer. */
  private readonly later = new Map<NodeJS.Timeout, HeldJob[]>();

  constructor(private readonly o: ExecutorOptions) {}

  get buffered(): number {
    return this.buffer.length;
  }

  get bufferedEmbeds(): number {
    return this.buffer.filter((h) => h.job.function_name === 'embed').length;
  }

  get freeSlots(): number {
    return Math.max(0, this.o.concurrency - this.slots);
  }

  /** Slots running queue jobs (or marking them started) now. */
  get queueRunning(): number {
    return this.slots - this.sideSlots;
  }

  /** Newly claimed jobs join the buffer in claim order; free slots take them at once. */
  add(jobs: HeldJob[]): void {
    if (jobs.length === 0) return;
    this.buffer.push(...jobs);
    this.buffer.sort((a, b) => claimOrder(a.job, b.job));
    this.pump();
  }

  /** Takes a buffered job out (cancelled before it started); undefined if it is not buffered. */
  remove(requestId: string): HeldJob | undefined {
    const i = this.buffer.findIndex((h) => h.job.request_id === requestId);
    if (i < 0) return undefined;
    const [h] = this.buffer.splice(i, 1);
    this.o.onTake();
    return h;
  }

  /** Stops starting jobs and hands back every buffered one (shutdown releases them). */
  drain(): HeldJob[] {
    this.paused = true;
    const left = this.buffer;
    this.buffer = [];
    for (const [t, jobs] of this.later) {
      clearTimeout(t);
      left.push(...jobs);
    }
    this.later.clear();
    return left;
  }

  /** Resolves once no engine call is in flight. */
  async idle(): Promise<void> {
    while (this.calls.size > 0) await Promise.allSettled([...this.calls]);
  }

  /** Fills free slots: buffered queue jobs first, then side work. */
  pump(): void {
    let took = false;
    while (!this.paused && this.slots < this.o.concurrency) {
      if (this.buffer.length === 0) {
        if (!this.o.side?.hasWaiting()) break;
        this.startSide(this.o.side);
        continue;
      }
      const first = this.buffer.shift()!;
      took = true;
      const group = [first];
      if (this.o.batchEmbeddings && first.job.function_name === 'embed' && batchableEmbed(first.job)) {
        this.buffer = this.buffer.filter((h) => {
          if (group.length >= this.o.embedBatchSize || h.job.function_name !== 'embed' || !batchableEmbed(h.job)) return true;
          group.push(h);
          return false;
        });
      }
      this.launch(group);
    }
    if (took) this.o.onTake();
  }

  /** Starts a group (one job, or an embed batch) in a slot, once every job in it is marked started. */
  private launch(group: HeldJob[]): void {
    const unmarked = group.filter((h) => !h.marked);
    if (unmarked.length === 0) return this.start(group);
    // The slot is taken while the mark is in flight.
    this.slots++;
    const sent = performance.now();
    const call = this.o
      .markStarted(unmarked)
      .then(
        ({ started, busy }) => {
          // As for the claim: started_at is the statement's time, the engine
          // call starts about when its reply arrives (see waitedMs).
          const replied = performance.now();
          this.o.policy.observeMark(replied - sent);
          const go: HeldJob[] = [];
          const again: HeldJob[] = [];
          for (const h of group) {
            if (h.marked) {
              go.push(h);
            } else if (started.has(h.job.request_id)) {
              h.marked = true;
              h.markedAt = replied;
              go.push(h);
            } else if (busy.has(h.job.request_id)) {
              again.push(h);
            } else {
              this.o.onLost(h);
            }
          }
          return { go, again };
        },
        (err: unknown) => {
          this.o.log(`could not mark ${unmarked.length} job(s) started: ${(err as Error).message}; trying again`);
          return { go: group.filter((h) => h.marked), again: group.filter((h) => !h.marked) };
        },
      )
      .then(({ go, again }) => {
        this.slots--;
        this.calls.delete(call);
        if (again.length > 0) this.retryLater(again);
        if (go.length > 0 && !this.paused) this.start(go);
        else if (go.length > 0) this.requeue(go); // shutting down: stop() releases them
        this.pump();
        this.o.onTake();
      });
    this.calls.add(call);
  }

  private start(group: HeldJob[]): void {
    if (group.length === 1) this.startOne(group[0]);
    else this.startBatch(group);
  }

  private requeue(jobs: HeldJob[]): void {
    this.buffer.push(...jobs);
    this.buffer.sort((a, b) => claimOrder(a.job, b.job));
  }

  /** Jobs whose row was locked go back to the buffer shortly (a locked row stalls only its own job). */
  private retryLater(jobs: HeldJob[]): void {
    const t = setTimeout(() => {
      this.later.delete(t);
      this.add(jobs);
    }, LOCKED_RETRY_MS);
    this.later.set(t, jobs);
  }

  private begin(h: HeldJob): void {
    const seconds = h.job.timeout_seconds ?? this.o.timeoutSeconds;
    h.state = 'running';
    h.startedAt = performance.now();
    // setTimeout holds at most 2^31-1 ms (~24.8 days); longer limits are that.
    h.timer = setTimeout(
      () => h.controller.abort(new TimedOut(seconds, outgrewItsTime(h, seconds))),
      Math.min(seconds * 1000, 2 ** 31 - 1),
    );
    this.o.log(`job ${h.job.request_id} ${h.job.function_name} started (attempt ${h.job.attempt})`);
  }

  /** Settles one job from its engine call (or its own abort), then reports it. */
  private settle(h: HeldJob, p: Promise<string>): Promise<void> {
    return raceAbort(p, h.controller.signal)
      .then(
        (result) => ({ result }),
        (error: unknown) => ({ error }),
      )
      .then((outcome) => {
        clearTimeout(h.timer);
        h.state = 'storing';
        this.o.onOutcome(h, outcome);
      });
  }

  /** An engine slot taken until `done` settles; then `release()` runs and the slot is offered again. */
  private holdSlot(done: Promise<unknown>, release: () => void): void {
    this.slots++;
    const call = done.then(
      () => {},
      () => {},
    ).finally(() => {
      release();
      this.slots--;
      this.calls.delete(call);
      this.pump();
      this.o.onTake();
    });
    this.calls.add(call);
  }

  private occupy(done: Promise<unknown>, jobs: number): void {
    const t0 = performance.now();
    this.holdSlot(done, () => this.o.policy.observeJob((performance.now() - t0) / jobs));
  }

  /** Side work in a slot, until its engine time is over (not counted in the claim policy's job times). */
  private startSide(side: SideWork): void {
    let run: Promise<void>;
    try {
      run = side.startNext();
    } catch (err) {
      run = Promise.reject(err);
    }
    this.sideSlots++;
    this.holdSlot(
      run.catch((err: unknown) => this.o.log(`side work failed: ${(err as Error).message}`)),
      () => this.sideSlots--,
    );
  }

  private startOne(h: HeldJob): void {
    this.begin(h);
    let p: Promise<string>;
    try {
      p = executeJob(this.o.engine, h.job, h.controller.signal, () => {
        h.lastOutputAt = performance.now();
        h.firstOutputAt ??= h.lastOutputAt;
      });
    } catch (err) {
      p = Promise.reject(err);
    }
    this.occupy(this.settle(h, p), 1);
  }

  private startBatch(batch: HeldJob[]): void {
    if (batch.length === 1) return this.startOne(batch[0]);
    for (const h of batch) this.begin(h);
    // Each job settles on its own outcome (split out of a refused call, see
    // executeEmbedBatch) or at once on its own abort (raceAbort).
    const outcomes = batch.map(() => Promise.withResolvers<string>());
    const call = executeEmbedBatch(
      this.o.engine,
      batch.map((h) => h.job),
      batch.map((h) => h.controller.signal),
      (i, outcome) => ('vector' in outcome ? outcomes[i].resolve(writeResult('embed', outcome.vector)) : outcomes[i].reject(outcome.error)),
      (line) => this.o.log(line),
    );
    // Not expected to throw; should it, no job is left waiting.
    call.catch((error: unknown) => outcomes.forEach((o) => o.reject(error)));
    this.o.log(`embedding ${batch.length} texts in one engine call`);
    this.occupy(Promise.allSettled(batch.map((h, i) => this.settle(h, outcomes[i].promise))), batch.length);
  }
}
