// The base of the worker's periodic duties (heartbeat, reclaim, cache
// eviction, result retention), the way River gives each of its maintenance
// services Start/Stop on one shared base. Each duty says only what one run
// does (runOnce); the base owns the timer and the rules every duty follows:
//
// - one run at a time: a tick that comes while a run is in flight is skipped
//   (the next tick runs again);
// - a run's failure is logged (`<name> failed: <message>` unless the duty
//   says otherwise) and the next tick runs as usual;
// - each completed run reports its result to `onRun` (the worker turns it
//   into a signal tests wait on, Worker.events);
// - stop() ends the ticks and resolves once the run in flight, if any, ended;
// - runNow() runs once at once (after the run in flight, if any): the
//   worker's last heartbeat at stop, and tests.
import type { Queryable } from '../../db/queryable.ts';

export interface PeriodicServiceOptions<R> {
  /** Time between runs, ms (the worker's settings give it; no default here). */
  intervalMs: number;
  log(line: string): void;
  /** Each run that completed, with its result (a skipped or failed run reports nothing). */
  onRun?(result: R): void;
}

/** The options of a duty that works on the worker's database. */
export interface PoolServiceOptions<R> extends PeriodicServiceOptions<R> {
  /** The worker's pool; undefined before its start and after its stop. */
  pool(): Queryable | undefined;
}

/** A duty's class says what it returns (R) and the options it is made with (O). */
export abstract class PeriodicService<R, O extends PeriodicServiceOptions<R> = PeriodicServiceOptions<R>> {
  /** The duty's name in its failure line: `<name> failed: ...`. */
  abstract readonly name: string;
  private timer?: NodeJS.Timeout;
  private inFlight?: Promise<R | undefined>;
  private stopped = false;

  constructor(protected readonly o: O) {
    if (!(o.intervalMs > 0) || !Number.isFinite(o.intervalMs)) {
      throw new RangeError(`a periodic service needs an interval above zero (got ${o.intervalMs} ms)`);
    }
  }

  /**
   * One run of the duty. Resolves with what it did, or undefined when it had
   * nothing to do (not started yet, switched off); throws when it failed.
   */
  protected abstract runOnce(): Promise<R | undefined>;

  /** Logs a failed run; a duty with its own wording overrides it. */
  protected failed(err: Error): void {
    this.o.log(`${this.name} failed: ${err.message}`);
  }

  /** True once stop() was called: a long run checks it between its steps. */
  protected get stopRequested(): boolean {
    return this.stopped;
  }

  /** Runs the duty every intervalMs until stop(). */
  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => {
      if (!this.inFlight) void this.run();
    }, this.o.intervalMs);
  }

  /** No more runs; resolves once the run in flight, if any, ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  /**
   * Runs the duty once now, after the run in flight (if any) ended, and
   * resolves with its result (undefined: nothing done, failed, or stopped).
   */
  async runNow(): Promise<R | undefined> {
    while (this.inFlight) await this.inFlight;
    if (this.stopped) return undefined;
    return this.run();
  }

  private run(): Promise<R | undefined> {
    const run = this.guarded();
    this.inFlight = run;
    void run.finally(() => {
      if (this.inFlight === run) this.inFlight = undefined;
    });
    return run;
  }

  private async guarded(): Promise<R | undefined> {
    let result: R | undefined;
    try {
      result = await this.runOnce();
    } catch (err) {
      this.failed(err instanceof Error ? err : new Error(String(err)));
      return undefined;
    }
    if (result !== undefined) {
      try {
        this.o.onRun?.(result);
      } catch (err) {
        this.o.log(`${this.name}: a listener failed: ${(err as Error).message}`);
      }
    }
    return result;
  }
}
