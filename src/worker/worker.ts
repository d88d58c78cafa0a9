// The worker: claims jobs from steadytext_queue, runs them on the engine,
// writes results. Talks to the database only through src/db/ and to models
// only through the Engine interface.
//
// - One pg.Pool for statements, one dedicated LISTEN connection
//   (steadytext_new_job wakes the claim loop; steadytext_cancelled aborts a
//   running job). Polling every poll interval is only the fallback.
// - Up to `concurrency` jobs at once; one claim statement takes
//   min(free slots) jobs. Claimed embed jobs share one engine.embed call.
// - Each job has an AbortController: aborted by cancel, by its timeout
//   (timeout_seconds or the setting; the job then fails 'timed out after N s'
//   and goes through retry logic), or at shutdown (released to pending).
// - Heartbeat and reclaim timers: any live worker takes back the jobs of a
//   worker whose heartbeat stopped.
import { hostname } from 'node:os';
import pg from 'pg';
import { EngineInputError, type Engine, type ModelRole } from '../engine/types.ts';
import { CHANNEL_CANCELLED, CHANNEL_NEW_JOB, type FunctionName, type Job } from '../interfaces.ts';
import { completeAndClaimJobs } from '../db/completeAndClaimJobs.ts';
import { completeJobs, type Completion } from '../db/completeJobs.ts';
import { cancelledJobs } from '../db/cancelledJobs.ts';
import { evictCache } from '../db/evictCache.ts';
import { failJob } from '../db/failJob.ts';
import { heartbeat } from '../db/heartbeat.ts';
import { markWorkerStopped } from '../db/markWorkerStopped.ts';
import { reclaimStale } from '../db/reclaimStale.ts';
import { registerWorker } from '../db/registerWorker.ts';
import { releaseJobs } from '../db/releaseJobs.ts';
import { releaseOrphans } from '../db/releaseOrphans.ts';
import { isTransientError, withRetries } from '../db/withRetries.ts';
import { writeModelIds } from '../db/writeModelIds.ts';
import { engineModelIds, loadWorkerEngine } from './engine.ts';
import { batchableEmbed, executeEmbedBatch, executeJob, JobInputError } from './execute.ts';
import { Listener } from './listener.ts';
import type { WorkerMetrics } from './metrics.ts';
import { startWorkerMetrics, type MetricsServer } from './metricsServer.ts';
import type { WorkerSettings } from './settings.ts';
import { packageVersion } from './version.ts';

/** The model role that answers each function (for the cache's model check). */
const ROLE_OF: Record<FunctionName, ModelRole> = {
  generate: 'generation',
  generate_json: 'generation',
  generate_regex: 'generation',
  generate_choice: 'generation',
  embed: 'embedding',
  rerank: 'reranking',
};

/** Why a job's AbortController fired. */
class Cancelled extends Error {
  constructor() {
    super('cancelled');
  }
}
class TimedOut extends Error {
  constructor(readonly seconds: number) {
    super(`timed out after ${seconds} s`);
  }
}
/** A result the database would not store; `permanent`: a retry would not help. */
class UnstorableResult extends Error {
  constructor(
    reason: string,
    readonly permanent: boolean,
  ) {
    super(`could not store the result: ${reason}`);
  }
}
class Shutdown extends Error {
  constructor() {
    super('worker shutting down');
  }
}

interface RunningJob {
  job: Job;
  controller: AbortController;
  timer: NodeJS.Timeout;
  startedAt: number;
}

export interface WorkerStats {
  workerId: string;
  running: number;
  jobsCompleted: number;
  jobsFailed: number;
  /** Late results thrown away (job cancelled, reclaimed, or released meanwhile). */
  resultsDiscarded: number;
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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Worker {
  readonly settings: WorkerSettings;
  private pool?: pg.Pool;
  private engine?: Engine;
  private ownsEngine = false;
  private listener?: Listener;
  private readonly running = new Map<string, RunningJob>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly wakeTimers = new Set<NodeJS.Timeout>();
  private stopping = false;
  private loopDone?: Promise<void>;
  private stopPromise?: Promise<void>;
  private wakePending = false;
  private wakeWaiter?: () => void;
  private jobsCompleted = 0;
  private jobsFailed = 0;
  private resultsDiscarded = 0;
  private heartbeatBusy = false;
  /** When the claim loop next looks for claims of this worker it is not running (releaseOrphans). */
  private orphanCheckAt = 0;
  private reclaimBusy = false;
  /** Jobs named by a steadytext_cancelled NOTIFY, to be checked against their rows. */
  private readonly cancelChecks = new Set<string>();
  private cancelCheckBusy = false;
  private evictUnavailable = false;
  /** Results waiting for the completion statement in flight (see storeResult). */
  private completions: Array<{ completion: Completion; settle: (counted: boolean | Error) => void }> = [];
  private completing = false;
  /** Set when settings.metricsPort is: /metrics and /health (metricsServer.ts). */
  metrics?: WorkerMetrics;
  metricsServer?: MetricsServer;

  constructor(settings: WorkerSettings) {
    this.settings = settings;
  }

  get workerId(): string {
    return this.settings.workerId;
  }

  get stats(): WorkerStats {
    return {
      workerId: this.workerId,
      running: this.running.size,
      jobsCompleted: this.jobsCompleted,
      jobsFailed: this.jobsFailed,
      resultsDiscarded: this.resultsDiscarded,
    };
  }

  /** True once stop() began (health reports 503). */
  get isStopping(): boolean {
    return this.stopping;
  }

  /** The engine's own load state for a role, when it offers one (an optional isLoaded(role)). */
  engineModelLoaded(role: ModelRole): boolean | undefined {
    const e = this.engine as { isLoaded?: (role: ModelRole) => boolean } | undefined;
    return typeof e?.isLoaded === 'function' ? e.isLoaded(role) : undefined;
  }

  /** The model id per role the engine serves (after start). */
  models: Partial<Record<ModelRole, string>> = {};

  private log(level: 'info' | 'debug', line: string): void {
    const s = this.settings;
    if (s.logLevel === 'silent' || (level === 'debug' && s.logLevel !== 'debug')) return;
    const text = `[steadytext-worker ${this.workerId}] ${line}`;
    if (s.log) s.log(text);
    else process.stderr.write(text + '\n');
  }

  /** Loads the engine, registers the worker, starts listening and claiming. */
  async start(): Promise<void> {
    const s = this.settings;
    try {
      this.engine = s.engine ?? (await loadWorkerEngine(s));
      this.ownsEngine = !s.engine;
      this.models = engineModelIds(this.engine);
      this.pool = new pg.Pool({
        ...s.connection,
        max: s.concurrency + 3,
        application_name: 'steadytext-worker',
      });
      this.pool.on('error', (err) => this.log('info', `idle connection error: ${err.message}`));
      const pool = this.pool;
      // The metrics port first: a port in use fails the start before this
      // worker is registered anywhere.
      if (s.metricsPort !== undefined) {
        ({ metrics: this.metrics, server: this.metricsServer } = await startWorkerMetrics(this));
        this.log('info', `metrics on ${this.metricsServer.url}/metrics, health on ${this.metricsServer.url}/health`);
      }
      // Jobs an earlier process left under this same worker_id count as crashed.
      await withRetries(() => reclaimStale(pool, s.maxRetries, this.workerId));
      await withRetries(() =>
        registerWorker(pool, {
          workerId: this.workerId,
          host: hostname(),
          pid: process.pid,
          concurrency: s.concurrency,
          heartbeatTimeoutSeconds: s.heartbeatTimeoutSeconds,
          version: packageVersion(),
          models: this.models as Record<string, string>,
        }),
      );
      await withRetries(() => writeModelIds(pool, this.models));
      this.listener = new Listener({
        connection: s.connection,
        channels: [CHANNEL_NEW_JOB, CHANNEL_CANCELLED],
        onNotification: (channel, payload) => this.onNotification(channel, payload),
        onReconnect: () => this.wake(),
        log: (line) => this.log('info', line),
      });
      await withRetries(() => this.listener!.start());
    } catch (err) {
      await this.teardown();
      throw err;
    }
    this.timers.push(
      setInterval(() => void this.beat(), s.heartbeatIntervalMs),
      setInterval(() => void this.reclaim(), s.heartbeatIntervalMs),
      setInterval(() => void this.evict(), s.cacheEvictIntervalMs),
    );
    this.loopDone = this.loop();
    this.log('info', `started (concurrency ${s.concurrency}, poll ${s.pollIntervalMs / 1000} s)`);
  }

  private onNotification(channel: string, payload: string): void {
    if (channel === CHANNEL_NEW_JOB) {
      this.wake();
    } else if (channel === CHANNEL_CANCELLED) {
      const id = payload.trim();
      if (this.running.has(id)) {
        this.cancelChecks.add(id);
        void this.checkCancels();
      }
    }
  }

  /**
   * A steadytext_cancelled NOTIFY names a job; anyone can send one, so the
   * job is aborted only when its row says it is cancelled under this
   * worker's claim (cancelledJobs). Checks that arrive while one is in
   * flight go out together in the next.
   */
  private async checkCancels(): Promise<void> {
    if (this.cancelCheckBusy || !this.pool) return;
    this.cancelCheckBusy = true;
    try {
      while (this.cancelChecks.size > 0) {
        const claims = [...this.cancelChecks]
          .map((id) => this.running.get(id))
          .filter((r): r is RunningJob => r !== undefined && !r.controller.signal.aborted)
          .map((r) => ({ requestId: r.job.request_id, attempt: r.job.attempt }));
        this.cancelChecks.clear();
        const pool = this.pool;
        if (!pool) break;
        const cancelled = await withRetries(() => cancelledJobs(pool, this.workerId, claims));
        for (const id of cancelled) {
          const r = this.running.get(id);
          if (r && !r.controller.signal.aborted) {
            this.log('debug', `job ${id} cancelled`);
            r.controller.abort(new Cancelled());
          }
        }
      }
    } catch (err) {
      this.log('info', `cancel check failed: ${(err as Error).message}`);
    } finally {
      this.cancelCheckBusy = false;
    }
  }

  /** Makes the claim loop run now (NOTIFY, a finished job, a retry that became due). */
  wake(): void {
    if (this.wakeWaiter) this.wakeWaiter();
    else this.wakePending = true;
  }

  private waitForWake(ms: number): Promise<void> {
    if (this.wakePending) {
      this.wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wakeWaiter = undefined;
        this.wakePending = false;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakeWaiter = done;
    });
  }

  /**
   * Claims while there are free slots, and stores finished jobs' results: one
   * statement (completeAndClaimJobs) stores every result waiting and claims
   * up to the slots they and the idle ones leave, so a busy worker pays one
   * commit per job rather than two.
   */
  private async loop(): Promise<void> {
    const s = this.settings;
    let errors = 0;
    while (!this.stopping) {
      if (Date.now() >= this.orphanCheckAt) await this.releaseOrphans();
      const group = this.completions.splice(0, 1000);
      // `running` still holds the jobs in `group`; their slots are free once this commits.
      const free = Math.max(0, s.concurrency - this.running.size) + group.length;
      if (free > 0) {
        try {
          const { counted, busy, claimed } = await withRetries(
            () => completeAndClaimJobs(this.pool!, this.workerId, group.map((g) => g.completion), free, s.maxRetries),
            { attempts: group.length > 0 ? 10 : undefined },
          );
          errors = 0;
          // A row another session holds locked is stored later, so it stalls
          // only its own job (its slot stays taken meanwhile), not the worker.
          const later = group.filter((g) => busy.has(g.completion.requestId));
          for (const g of group) if (!busy.has(g.completion.requestId)) g.settle(counted.has(g.completion.requestId));
          if (later.length > 0) this.storeLater(later);
          if (claimed.length > 0) this.launch(claimed);
          if (claimed.length > 0 || this.completions.length > 0) continue; // more may be waiting
        } catch (err) {
          if (group.length > 0 && !isTransientError(err)) {
            // One row the statement could not store must not fail the others:
            // each result goes out on its own (the claim waits for the next turn).
            await this.storeEach(group);
            continue;
          }
          for (const g of group) g.settle(err instanceof Error ? err : new Error(String(err)));
          errors++;
          this.log('info', `claim failed: ${(err as Error).message}`);
          await sleep(Math.min(30_000, 500 * 2 ** Math.min(errors, 6)));
          continue;
        }
      }
      await this.waitForWake(s.pollIntervalMs);
    }
    // Stopping: results that came in meanwhile are stored without claiming.
    if (this.completions.length > 0 && !this.completing) await this.flushCompletions();
  }

  /**
   * Every heartbeat timeout, between two claim statements (so every claim
   * whose reply arrived is in `running`): claims this worker holds but does
   * not run, left by a reply lost after its commit, go back to pending.
   */
  private async releaseOrphans(): Promise<void> {
    this.orphanCheckAt = Date.now() + this.settings.heartbeatTimeoutSeconds * 1000;
    try {
      const ids = await withRetries(() => releaseOrphans(this.pool!, this.workerId, [...this.running.keys()]));
      if (ids.length > 0) this.log('info', `released ${ids.length} claim(s) this worker held but was not running (reply lost)`);
    } catch (err) {
      this.log('info', `orphan check failed: ${(err as Error).message}`);
    }
  }

  /** Starts claimed jobs: embed jobs together in one engine call, the rest one by one. */
  private launch(jobs: Job[]): void {
    const embeds = this.settings.batchEmbeddings ? jobs.filter((j) => j.function_name === 'embed' && batchableEmbed(j)) : [];
    const batch = embeds.length > 1 ? embeds : [];
    const entries = jobs.map((job) => this.track(job));
    const outcomes = new Map<string, Promise<string>>();
    if (batch.length > 0) {
      // The engine call aborts only when every job in it has been aborted;
      // each job still settles at once on its own abort (raceAbort below).
      const all = new AbortController();
      const signals = batch.map((j) => this.running.get(j.request_id)!.controller.signal);
      const check = () => {
        if (signals.every((sig) => sig.aborted)) all.abort(signals[0].reason);
      };
      for (const sig of signals) sig.addEventListener('abort', check, { once: true });
      const results = executeEmbedBatch(this.engine!, batch, all.signal);
      results.catch(() => {}); // each job handles the rejection on its own
      batch.forEach((j, i) => outcomes.set(j.request_id, results.then((r) => r[i])));
      this.log('debug', `embedding ${batch.length} texts in one engine call`);
    }
    for (const entry of entries) {
      const { job, controller } = entry;
      const p = outcomes.get(job.request_id) ?? executeJob(this.engine!, job, controller.signal);
      const done = raceAbort(p, controller.signal).then(
        (result) => this.succeed(entry, result),
        (err) => this.fail(entry, err),
      ).finally(() => {
        clearTimeout(entry.timer);
        this.running.delete(job.request_id);
        this.inflight.delete(done);
        this.wake();
      });
      this.inflight.add(done);
    }
  }

  private track(job: Job): RunningJob {
    const seconds = job.timeout_seconds ?? this.settings.timeoutSeconds;
    const controller = new AbortController();
    // setTimeout holds at most 2^31-1 ms (~24.8 days); longer limits are that.
    const timer = setTimeout(() => controller.abort(new TimedOut(seconds)), Math.min(seconds * 1000, 2 ** 31 - 1));
    const entry = { job, controller, timer, startedAt: Date.now() };
    this.running.set(job.request_id, entry);
    this.log('debug', `job ${job.request_id} ${job.function_name} started (attempt ${job.attempt})`);
    return entry;
  }

  private async succeed(entry: RunningJob, result: string): Promise<void> {
    const { job } = entry;
    // A result PostgreSQL cannot store would fail the whole grouped statement
    // (and every other completion in it): fail this job on its own instead.
    const unstorable = unstorableText(result);
    if (unstorable) return this.fail(entry, new UnstorableResult(unstorable, true));
    const counted = await this.storeResult({
      requestId: job.request_id,
      attempt: job.attempt,
      result,
      modelId: this.models[ROLE_OF[job.function_name]] ?? null,
    });
    if (counted instanceof Error) {
      this.log('info', `job ${job.request_id}: could not store the result: ${counted.message}`);
      // Not left 'processing' forever: a result the database refuses fails
      // the job at once; a lost connection goes through the retry logic.
      await this.fail(
        entry,
        counted instanceof UnstorableResult ? counted : new Error(`could not store the result: ${counted.message}`),
      );
    } else if (counted) {
      this.jobsCompleted++;
      this.metrics?.jobSettled(job.function_name, 'completed', Date.now() - entry.startedAt);
      this.log('debug', `job ${job.request_id} completed in ${Date.now() - entry.startedAt} ms`);
    } else {
      this.resultsDiscarded++;
      this.metrics?.jobSettled(job.function_name, 'discarded', Date.now() - entry.startedAt);
      this.log('debug', `job ${job.request_id} result discarded (no longer ours: cancelled or reclaimed)`);
    }
  }

  /**
   * Stores a result. While the worker runs, the claim loop stores it at its
   * next turn together with every other result waiting, in the statement that
   * also claims the next jobs (completeAndClaimJobs); once stopping, results
   * go out through completeJobs. Results that arrive while a statement is in
   * flight go out together in the next one (one commit for the group, each
   * row still guarded on its own). No result waits on a timer.
   */
  private storeResult(completion: Completion): Promise<boolean | Error> {
    return new Promise((settle) => {
      this.completions.push({ completion, settle });
      if (!this.stopping) this.wake(); // the claim loop stores it, claiming the next job in the same statement
      else if (!this.completing) void this.flushCompletions();
    });
  }

  /** Results whose row was locked by another session: sent again shortly. */
  private storeLater(items: typeof this.completions): void {
    const t = setTimeout(() => {
      this.wakeTimers.delete(t);
      this.completions.push(...items);
      if (!this.stopping) this.wake();
      else if (!this.completing) void this.flushCompletions();
    }, 200);
    this.wakeTimers.add(t);
  }

  /**
   * Stores each completion in a statement of its own, after a grouped one
   * failed for a reason other than the connection: the rows that can be
   * stored are, and a row that cannot settles with its own error (its job
   * then fails alone, see succeed).
   */
  private async storeEach(group: typeof this.completions): Promise<void> {
    for (const g of group) {
      try {
        const counted = await withRetries(() => completeJobs(this.pool!, this.workerId, [g.completion]), { attempts: 10 });
        g.settle(counted.has(g.completion.requestId));
      } catch (err) {
        g.settle(new UnstorableResult(err instanceof Error ? err.message : String(err), !isTransientError(err)));
      }
    }
  }

  private async flushCompletions(): Promise<void> {
    this.completing = true;
    try {
      while (this.completions.length > 0) {
        const group = this.completions.splice(0, 1000);
        try {
          const counted = await withRetries(
            () => completeJobs(this.pool!, this.workerId, group.map((g) => g.completion)),
            { attempts: 10 },
          );
          for (const g of group) g.settle(counted.has(g.completion.requestId));
        } catch (err) {
          if (!isTransientError(err)) await this.storeEach(group);
          else for (const g of group) g.settle(err instanceof Error ? err : new Error(String(err)));
        }
      }
    } finally {
      this.completing = false;
    }
  }

  private async fail(entry: RunningJob, err: unknown): Promise<void> {
    const { job } = entry;
    if (err instanceof Cancelled) {
      this.metrics?.jobSettled(job.function_name, 'discarded', Date.now() - entry.startedAt);
      this.resultsDiscarded++;
      return; // the row is already 'cancelled'
    }
    if (err instanceof Shutdown) return; // stop() releases it to pending
    const retryable = !(
      err instanceof EngineInputError ||
      err instanceof JobInputError ||
      (err instanceof UnstorableResult && err.permanent)
    );
    const message =
      err instanceof TimedOut
        ? err.message
        : err instanceof Error
          ? err.message || err.name
          : String(err);
    const s = this.settings;
    try {
      const outcome = await withRetries(
        () =>
          failJob(this.pool!, job.request_id, this.workerId, job.attempt, {
            error: message,
            defaultMaxRetries: s.maxRetries,
            backoffBaseMs: s.retryBackoffBaseMs,
            backoffMaxMs: s.retryBackoffMaxMs,
            retryable,
          }),
        { attempts: 10 },
      );
      this.metrics?.jobSettled(
        job.function_name,
        !outcome.counted ? 'discarded' : outcome.status === 'failed' ? 'failed' : 'retried',
        Date.now() - entry.startedAt,
      );
      if (!outcome.counted) {
        this.resultsDiscarded++;
        return;
      }
      if (outcome.status === 'failed') {
        this.jobsFailed++;
        this.log('debug', `job ${job.request_id} failed: ${message}`);
      } else {
        this.log('debug', `job ${job.request_id} will retry (retry ${outcome.retryCount}): ${message}`);
        this.wakeAt(outcome.runAt!);
      }
    } catch (e) {
      this.log('info', `job ${job.request_id}: could not record the failure: ${(e as Error).message}`);
    }
  }

  /** Claims again when a retry's backoff ends, rather than at the next poll. */
  private wakeAt(at: Date): void {
    const t = setTimeout(() => {
      this.wakeTimers.delete(t);
      this.wake();
    }, Math.max(0, at.getTime() - Date.now()) + 5);
    this.wakeTimers.add(t);
  }

  private async beat(status?: 'stopping'): Promise<void> {
    if (this.heartbeatBusy || !this.pool) return;
    this.heartbeatBusy = true;
    const pool = this.pool;
    try {
      const state = {
        currentJobs: this.running.size,
        jobsCompleted: this.jobsCompleted,
        jobsFailed: this.jobsFailed,
        status,
      };
      const found = await withRetries(() => heartbeat(pool, this.workerId, state));
      if (!found && !this.stopping) {
        this.log('info', 'worker row missing; registering again');
        await registerWorker(pool, {
          workerId: this.workerId,
          host: hostname(),
          pid: process.pid,
          concurrency: this.settings.concurrency,
          heartbeatTimeoutSeconds: this.settings.heartbeatTimeoutSeconds,
          version: packageVersion(),
          models: this.models as Record<string, string>,
        });
      }
    } catch (err) {
      this.log('info', `heartbeat failed: ${(err as Error).message}`);
    } finally {
      this.heartbeatBusy = false;
    }
  }

  private async reclaim(): Promise<void> {
    if (this.reclaimBusy || this.stopping || !this.pool) return;
    this.reclaimBusy = true;
    const pool = this.pool;
    try {
      const jobs = await withRetries(() => reclaimStale(pool, this.settings.maxRetries));
      if (jobs.length > 0) {
        const lost = [...new Set(jobs.map((j) => j.lost_worker))].join(', ');
        this.log('info', `reclaimed ${jobs.length} job(s) from lost worker(s) ${lost}`);
        this.wake();
      }
    } catch (err) {
      this.log('info', `reclaim failed: ${(err as Error).message}`);
    } finally {
      this.reclaimBusy = false;
    }
  }

  private async evict(): Promise<void> {
    if (this.evictUnavailable || this.stopping || !this.pool) return;
    try {
      const n = await evictCache(this.pool);
      if (n > 0) this.log('debug', `evicted ${n} cache entries`);
    } catch (err) {
      if ((err as { code?: string }).code === '42883') {
        this.evictUnavailable = true; // steadytext_cache_evict() not installed
        this.log('info', 'steadytext_cache_evict() is not installed; cache eviction off');
      } else {
        this.log('info', `cache eviction failed: ${(err as Error).message}`);
      }
    }
  }

  /**
   * Graceful stop: no new claims; running jobs get up to shutdownGraceMs to
   * finish; the rest are aborted and released to pending (no retry counted);
   * the worker row ends 'stopped'. Safe to call more than once.
   */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.loopDone;
    if (this.pool) await this.beat('stopping');
    if (this.inflight.size > 0) {
      this.log('info', `stopping: waiting up to ${this.settings.shutdownGraceMs / 1000} s for ${this.inflight.size} job(s)`);
      let graceTimer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.inflight]),
        new Promise((r) => (graceTimer = setTimeout(r, this.settings.shutdownGraceMs))),
      ]);
      clearTimeout(graceTimer);
    }
    const left = [...this.running.keys()];
    for (const r of this.running.values()) r.controller.abort(new Shutdown());
    await Promise.allSettled([...this.inflight]);
    let released = 0;
    if (left.length > 0 && this.pool) {
      const pool = this.pool;
      try {
        released = await withRetries(() => releaseJobs(pool, this.workerId, left));
      } catch (err) {
        this.log('info', `could not release ${left.length} job(s): ${(err as Error).message} (they will be reclaimed)`);
      }
    }
    for (const t of this.timers) clearInterval(t);
    if (this.pool) {
      const pool = this.pool;
      await withRetries(() =>
        markWorkerStopped(pool, this.workerId, { jobsCompleted: this.jobsCompleted, jobsFailed: this.jobsFailed }),
      ).catch((err) => this.log('info', `could not mark the worker stopped: ${(err as Error).message}`));
    }
    await this.teardown();
    this.log('info', `stopped (${this.jobsCompleted} completed, ${this.jobsFailed} failed, ${released} released)`);
  }

  private async teardown(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const t of this.wakeTimers) clearTimeout(t);
    this.wakeTimers.clear();
    await this.listener?.close();
    await this.metricsServer?.close();
    await this.pool?.end().catch(() => {});
    this.pool = undefined;
    if (this.ownsEngine) await this.engine?.dispose().catch(() => {});
  }
}

/** Why PostgreSQL text cannot hold `text` (NUL, lone surrogates), or null when it can. */
export function unstorableText(text: string): string | null {
  if (text.includes('\u0000')) return 'the result holds a NUL character, which PostgreSQL text cannot store';
  if (!text.isWellFormed()) return 'the result holds an unpaired UTF-16 surrogate (not valid UTF-8)';
  return null;
}
