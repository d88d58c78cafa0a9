// A job this worker holds, from its claim until its outcome is recorded, and
// why a job's AbortController fired. Shared by the worker's parts (producer,
// executor, completer; worker.ts wires them).
import type { ClaimedJob } from '../db/jobs/claimJobs.ts';

export interface HeldJob {
  job: ClaimedJob;
  /** performance.now() when the claim's reply arrived. */
  claimedAt: number;
  /**
   * buffered: claimed ahead, waiting for an engine slot; running: on the
   * engine; storing: its outcome is being recorded (the slot is free again).
   */
  state: 'buffered' | 'running' | 'storing';
  /**
   * The row's started_at is stamped (by the claim, for a job that went
   * straight to a free slot, or by markStarted): from then on a crash of this
   * worker counts as a failed attempt of the job. A job starts only once
   * marked (see Executor).
   */
  marked: boolean;
  /** performance.now() when the reply of the statement that stamped started_at (the claim or markStarted) arrived. */
  markedAt?: number;
  /** performance.now() when its engine call began. */
  startedAt?: number;
  /** performance.now() of the engine's first and latest report of this job's output (GenerateOptions.onProgress). */
  firstOutputAt?: number;
  lastOutputAt?: number;
  /** Aborts the engine call: cancel, timeout, shutdown. */
  controller: AbortController;
  /** The job's time limit, armed when it starts running. */
  timer?: NodeJS.Timeout;
}

export function holdJob(job: ClaimedJob): HeldJob {
  const now = performance.now();
  return {
    job,
    claimedAt: now,
    state: 'buffered',
    marked: job.started,
    markedAt: job.started ? now : undefined,
    controller: new AbortController(),
  };
}

/** Ms between the stamp of the row's started_at and the start of the engine call (started_at moves forward by it). */
export function waitedMs(h: HeldJob): number {
  return h.startedAt === undefined || h.markedAt === undefined ? 0 : Math.max(0, h.startedAt - h.markedAt);
}

/** Ms since the job started running (or was claimed, if it never ran). */
export function runMs(h: HeldJob): number {
  return performance.now() - (h.startedAt ?? h.claimedAt);
}

export class Cancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

/**
 * Why a job's time limit fired. `ownWork`: the engine was producing the
 * job's output right up to the limit (see outgrewItsTime): the job itself
 * needs longer than its limit, a retry would time out again, so it fails at
 * once. Otherwise the engine or the worker stalled, and the retry rule applies.
 */
export class TimedOut extends Error {
  constructor(
    readonly seconds: number,
    readonly ownWork = false,
  ) {
    super(
      ownWork
        ? `timed out after ${seconds} s while still producing its output: the job needs more than its time limit (not retried)`
        : `timed out after ${seconds} s`,
    );
  }
}

/**
 * True when a job that reaches its time limit of `seconds` was busy with its
 * own output the whole time rather than stalled: the engine reported its
 * first output within the first half of the limit (the job was not mostly
 * waiting for the engine) and its latest within the last tenth (at least the
 * last 250 ms) (still producing, not stalled). A job the engine reports no
 * output for (embeddings; an HTTP engine) never is.
 */
export function outgrewItsTime(
  h: Pick<HeldJob, 'startedAt' | 'firstOutputAt' | 'lastOutputAt'>,
  seconds: number,
  now = performance.now(),
): boolean {
  if (h.startedAt === undefined || h.firstOutputAt === undefined || h.lastOutputAt === undefined) return false;
  const limitMs = seconds * 1000;
  return h.firstOutputAt - h.startedAt <= limitMs / 2 && now - h.lastOutputAt <= Math.max(limitMs / 10, 250);
}

export class Shutdown extends Error {
  constructor() {
    super('worker shutting down');
  }
}

/** A result the database would not store; `permanent`: a retry would not help. */
export class UnstorableResult extends Error {
  constructor(
    reason: string,
    readonly permanent: boolean,
  ) {
    super(`could not store the result: ${reason}`);
  }
}

/** Why PostgreSQL text cannot hold `text` (NUL, lone surrogates), or null when it can. */
export function unstorableText(text: string): string | null {
  if (text.includes('\u0000')) return 'the result holds a NUL character, which PostgreSQL text cannot store';
  if (!text.isWellFormed()) return 'the result holds an unpaired UTF-16 surrogate (not valid UTF-8)';
  return null;
}
