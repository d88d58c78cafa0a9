// The pipeline runner: fills engine slots the queue leaves free with pipeline
// batches (docs/pipelines.md). Queue work goes first: the executor starts a
// batch only when no queue job waits for the slot, and the runner claims only
// then (a slot free, or a batch of its own running); the SQL claim itself
// passes a pipeline over while a queue job of at least its priority is
// claimable. A batch holds its slot for one batch's engine time (a generate
// batch gives its slot up between rows when a queue job starts waiting), so
// an interactive request waits at most that long.
//
// The engine never waits on the database: while a batch is on the engine the
// runner already holds the next one claimed (one batch ahead, while pipelines
// have work), and a batch's results are written (recordBatch.ts) while the
// next one runs. It looks for work when woken (NOTIFY steadytext_pipeline, a
// reclaim, released rows becoming due, a slot freed) and every poll interval.
import type { Engine, ModelRole } from '../../engine/types.ts';
import type { FunctionName } from '../../interfaces.ts';
import { claimPipelineBatch } from '../../db/pipelines/claimPipelineBatch.ts';
import type { Queryable } from '../../db/queryable.ts';
import { withRetries } from '../../postgres/withRetries.ts';
import type { SideWork } from '../executor.ts';
import { Shutdown } from '../heldJob.ts';
import { toBatch, type PipelineBatch } from './batch.ts';
import type { PipelineRecorder } from './recordBatch.ts';
import { runBatch } from './runBatch.ts';
import { WakeSignal } from '../wakeSignal.ts';

/** What the runner reads off the executor. */
export interface SlotState {
  /** Queue jobs claimed, waiting for a slot: they go first. */
  readonly buffered: number;
  /** Engine slots free now. */
  readonly freeSlots: number;
  /** Slots running queue jobs now. */
  readonly queueRunning: number;
  /** A batch became ready: start it if a slot is free. */
  pump(): void;
}

export interface PipelineRunnerOptions {
  pool(): Queryable | undefined;
  workerId: string;
  engine(): Engine;
  /** The worker's model id per role: a pipeline is claimed only by a worker serving its model. */
  models(): Partial<Record<ModelRole, string>>;
  /** The job types this worker runs; null: every type. */
  served(): readonly FunctionName[] | null;
  /** Most rows in one batch (a pipeline's own batch_size may lower it). */
  batchSize: number;
  /** Time limit of one engine call. */
  timeoutSeconds: number;
  pollIntervalMs: number;
  slots(): SlotState | undefined;
  recorder: PipelineRecorder;
  log(level: 'info' | 'debug', line: string): void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Batches written or waiting to be, beyond which the runner claims no more. */
const MAX_WRITE_BACKLOG = 3;

export class PipelineRunner implements SideWork {
  /** Claimed ahead, waiting for a slot. */
  private ahead?: PipelineBatch;
  /** On the engine now. */
  private readonly running = new Set<PipelineBatch>();
  /** Pipelines may have work: set by a wake-up, a poll, a full claim; cleared by a claim that brought nothing. */
  private hasWork = true;
  /** Wake-ups so far: a claim that comes back empty clears hasWork only if none came while it ran (a change committed meanwhile). */
  private wakes = 0;
  /** The last claim brought nothing while queue work held this worker: claim once more when it is idle again. */
  private retryWhenIdle = false;
  private stopped = false;
  private readonly wakeSignal = new WakeSignal();
  private readonly timers = new Set<NodeJS.Timeout>();
  private done?: Promise<void>;

  constructor(private readonly o: PipelineRunnerOptions) {}

  start(): void {
    this.done = this.loop();
  }

  /** Pipelines may have new work (NOTIFY steadytext_pipeline, a reclaim, a reconnect). */
  wake(): void {
    this.hasWork = true;
    this.wakes++;
    this.signal();
  }

  /** Wakes the runner in `ms` (released rows become claimable then). */
  wakeIn(ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) return this.wake();
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.wake();
    }, ms + 5);
    this.timers.add(t);
  }

  /** The executor's state changed (a slot freed, the buffer shrank): a claim may be due. */
  nudge(): void {
    const s = this.o.slots();
    if (this.retryWhenIdle && s && s.buffered === 0 && s.queueRunning === 0) {
      this.retryWhenIdle = false;
      this.hasWork = true;
    }
    this.signal();
  }

  // ------------------------------------------------------------ the executor's side (SideWork)

  /** A batch is claimed and may start. */
  hasWaiting(): boolean {
    return this.ahead !== undefined && !this.stopped;
  }

  /** Starts the batch claimed ahead in the slot the executor gives it; resolves when its engine time is over. */
  startNext(): Promise<void> {
    const batch = this.ahead!;
    this.ahead = undefined;
    this.signal(); // claim the next batch while this one runs
    batch.state = 'running';
    this.running.add(batch);
    this.o.log('debug', `pipeline '${batch.name}': ${batch.rows.length} row(s) of ${batch.functionName} on the engine`);
    return runBatch(batch, {
      engine: this.o.engine(),
      timeoutSeconds: this.o.timeoutSeconds,
      yieldNow: () => (this.o.slots()?.buffered ?? 0) > 0,
      log: (line) => this.o.log('debug', line),
    }).then(
      (run) => {
        this.running.delete(batch);
        this.o.recorder.record(batch, run);
      },
      (err: unknown) => {
        // runBatch does not reject; should it, the rows go back rather than stay held.
        this.running.delete(batch);
        this.o.recorder.record(batch, { outcomes: batch.rows.map(() => ({ kind: 'fault', error: String(err) })) });
      },
    );
  }

  // ------------------------------------------------------------ stop

  /** No more claims; the batch claimed ahead goes back to pending at once. Running batches go on (the grace). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.signal();
    await this.done;
    const ahead = this.ahead;
    this.ahead = undefined;
    if (ahead) await this.o.recorder.releaseUnrun(ahead);
    await this.o.recorder.retryOwed();
  }

  /** The grace is over: running batches stop; their rows not yet computed go back to pending. */
  abort(): void {
    for (const b of this.running) b.controller.abort(new Shutdown());
  }

  /** True while a batch is on the engine or its outcome is being written. */
  get busy(): boolean {
    return this.running.size > 0 || this.o.recorder.busy;
  }

  async settled(): Promise<void> {
    await this.o.recorder.recorded();
  }

  // ------------------------------------------------------------ claiming

  private signal(): void {
    this.wakeSignal.wake();
  }

  /** A claim is due: pipelines may have work, none is claimed ahead, and no queue job waits for the slot it would take. */
  private claimDue(): boolean {
    const s = this.o.slots();
    if (!s || this.stopped || !this.hasWork || this.ahead) return false;
    // Claim no further ahead than the writes keep up with: a fast engine
    // would otherwise hold ever more rows 'processing', waiting to be written.
    if (this.o.recorder.writeBacklog >= MAX_WRITE_BACKLOG) return false;
    return s.buffered === 0 && (s.freeSlots > 0 || this.running.size > 0);
  }

  private async claim(): Promise<void> {
    const pool = this.o.pool();
    if (!pool) return;
    const wakesBefore = this.wakes;
    const rows = await withRetries(() =>
      claimPipelineBatch(pool, this.o.workerId, this.o.batchSize, this.o.models(), this.o.served()),
    );
    const batch = toBatch(rows);
    if (!batch) {
      this.hasWork = this.wakes !== wakesBefore;
      const s = this.o.slots();
      // The SQL passes pipelines over while queue jobs of at least their priority are claimable.
      this.retryWhenIdle = !!s && (s.buffered > 0 || s.queueRunning > 0);
      return;
    }
    this.ahead = batch;
    if (this.stopped) return; // stop() releases it
    this.o.slots()?.pump();
  }

  private async loop(): Promise<void> {
    let errors = 0;
    let pollAt = 0;
    while (!this.stopped) {
      // Every poll interval, whatever woke the runner meanwhile: the fallback when a NOTIFY was missed.
      if (Date.now() >= pollAt) {
        pollAt = Date.now() + this.o.pollIntervalMs;
        this.hasWork = true;
      }
      await this.o.recorder.retryOwed();
      if (this.claimDue()) {
        try {
          await this.claim();
          errors = 0;
        } catch (err) {
          errors++;
          this.o.log('info', `pipeline claim failed: ${(err as Error).message}`);
          await sleep(Math.min(30_000, 500 * 2 ** Math.min(errors, 6)));
        }
        continue;
      }
      await this.wakeSignal.wait(Math.max(0, pollAt - Date.now()));
    }
  }
}
