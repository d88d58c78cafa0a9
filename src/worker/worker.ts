// The worker: claims jobs from steadytext_queue, runs them on the engine,
// writes results. Talks to the database only through src/db/ and to models
// only through the Engine interface. Parts with one job each (the way River
// splits producer, completer and its maintenance services), composed here:
//
// - Producer (producer.ts): claims ahead into a small bounded local buffer,
//   as much as the claim policy (claimPolicy.ts) says.
// - Executor (executor.ts): keeps up to `concurrency` engine calls busy from
//   that buffer; embed jobs go in micro-batches of up to embedBatchSize.
// - Outcomes (outcomes.ts): records each job's outcome (stored through the
//   Completer's group commit, failed by the retry rule, discarded, released
//   at stop) and counts them.
// - CancelChecks (cancelChecks.ts): a steadytext_cancelled NOTIFY checked
//   against the row before a job is aborted.
// - Periodic services (services/, one start/stop base): the heartbeat, the
//   reclaim of lost workers' jobs, the cache eviction, the result retention.
//   Each run of one is a signal on Worker.events.
// - The pipeline runner (pipelines/): fills the engine slots queue jobs leave
//   free with pipeline batches (docs/pipelines.md), claimed one batch ahead,
//   written while the next one runs.
//
// This file holds what joins them: the jobs held (claimed, not yet recorded),
// the LISTEN connection (steadytext_new_job wakes the producer;
// steadytext_cancelled starts a cancel check; steadytext_pipeline wakes the
// pipeline runner), the start and the graceful stop. Each state transition has one home in src/db/: claimJobs,
// completeJobs, failJob (and the give-up rule it shares with reclaimStale,
// failedAttempt.ts), releaseJobs/releaseOrphans, reclaimStale, cancelledJobs
// (the worker's half of cancel).
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import pg from 'pg';
import type { Engine, ModelRole } from '../engine/types.ts';
import { CHANNEL_CANCELLED, CHANNEL_NEW_JOB, CHANNEL_PIPELINE, FUNCTION_NAMES, type FunctionName } from '../interfaces.ts';
import { modelRoleOf } from '../jobTypes.ts';
import { claimJobs, type ClaimedJob } from '../db/jobs/claimJobs.ts';
import { markStarted } from '../db/jobs/markStarted.ts';
import { markWorkerStopped } from '../db/workers/markWorkerStopped.ts';
import { reclaimPipelineRows } from '../db/pipelines/reclaimPipelineRows.ts';
import { reclaimStale, type ReclaimedJob } from '../db/jobs/reclaimStale.ts';
import type { CleanupResult } from '../db/queue/cleanupResults.ts';
import { assertSchemaVersion } from '../db/schema/schemaVersion.ts';
import { withPinnedSearchPath } from '../postgres/pinSearchPath.ts';
import { registerWorker } from '../db/workers/registerWorker.ts';
import { releaseOrphans } from '../db/jobs/releaseOrphans.ts';
import { serverStartTime } from '../postgres/serverStartTime.ts';
import { withRetries } from '../postgres/withRetries.ts';
import { writeModelIds } from '../db/workers/writeModelIds.ts';
import { engineModelIds, engineRefusals, loadWorkerEngine } from './engine.ts';
import { Executor } from './executor.ts';
import { Cancelled, holdJob, Shutdown, type HeldJob } from './heldJob.ts';
import { CancelChecks } from './cancelChecks.ts';
import { ClaimPolicy } from './claimPolicy.ts';
import { Listener } from './listener.ts';
import { Outcomes } from './outcomes.ts';
import { CacheEvictionService } from './services/cacheEviction.ts';
import { HeartbeatService, type HeartbeatResult } from './services/heartbeat.ts';
import { ReclaimService } from './services/reclaim.ts';
import { RetentionService } from './services/retention.ts';
import type { WorkerMetrics } from './metrics.ts';
import { startWorkerMetrics, type MetricsServer } from './metricsServer.ts';
import { Producer } from './producer.ts';
import { PipelineRecorder, type PipelineRowOutcome } from './pipelines/recordBatch.ts';
import { PipelineRunner } from './pipelines/runner.ts';
import type { WorkerSettings } from './settings.ts';
import { packageVersion } from './version.ts';

export { unstorableText } from './heldJob.ts';

export interface WorkerStats {
  workerId: string;
  /** Jobs on the engine now. */
  running: number;
  /** Jobs claimed ahead, waiting for a slot. */
  buffered: number;
  jobsCompleted: number;
  jobsFailed: number;
  /** Late results thrown away (job cancelled, reclaimed, or released meanwhile). */
  resultsDiscarded: number;
  /**
   * Pipeline rows this worker is done with, by outcome: written; failed (a
   * constraint, a trigger, an input the engine refused); stale, busy, lost
   * (not written: the write said so); retried (an engine fault); released
   * (let go unrun); refused (the pipeline cannot run on this model).
   */
  pipelineRows: Readonly<Record<PipelineRowOutcome, number>>;
}

/**
 * What the worker signals on Worker.events: one event per completed run of
 * each periodic service (a run that failed or had nothing to do sends none).
 * Tests wait on them (`once(worker.events, 'reclaimed')`) rather than on
 * the clock or the worker's private fields.
 */
export interface WorkerEvents {
  /** A heartbeat was sent. */
  heartbeat: [HeartbeatResult];
  /** A reclaim pass ran: the jobs it took back from lost workers (often none). */
  reclaimed: [ReclaimedJob[]];
  /** steadytext_cache_evict() ran: the entries it evicted. */
  evicted: [number];
  /** The result retention ran (only with --result-retention). */
  cleanedUp: [CleanupResult];
  /** A reclaim pass took back pipeline rows lost workers held: how many (only when some). */
  pipelineReclaimed: [number];
}

/** The worker's periodic duties, one service each (services/). */
export interface WorkerServices {
  heartbeat: HeartbeatService;
  reclaim: ReclaimService;
  cacheEviction: CacheEvictionService;
  /** Only when --result-retention is set. */
  retention?: RetentionService;
}

export class Worker {
  readonly settings: WorkerSettings;
  private pool?: pg.Pool;
  private engine?: Engine;
  private ownsEngine = false;
  private listener?: Listener;
  /** The server's start time when this worker last looked (a restart in between: see afterReconnect). */
  private serverStartedAt?: string;
  private producer?: Producer;
  private executor?: Executor;
  /** Pipeline batches in the slots the queue leaves free (unless --no-pipelines). */
  private pipelines?: PipelineRunner;
  private readonly pipelineRecorder: PipelineRecorder;
  /** Every job this worker holds, from its claim until its outcome is recorded. */
  private readonly held = new Map<string, HeldJob>();
  private stopping = false;
  private stopPromise?: Promise<void>;
  /** Jobs named by a steadytext_cancelled NOTIFY, checked against their rows. */
  private readonly cancelChecks: CancelChecks;
  /** Set when settings.metricsPort is: /metrics and /health (metricsServer.ts). */
  metrics?: WorkerMetrics;
  metricsServer?: MetricsServer;

  /** Signals of the periodic services' runs (WorkerEvents). */
  readonly events = new EventEmitter<WorkerEvents>();
  /** The periodic duties; started by start(), stopped by stop(). */
  readonly services: Readonly<WorkerServices>;
  /** Each held job's outcome, and the counts. */
  private readonly outcomes: Outcomes;

  constructor(settings: WorkerSettings) {
    this.settings = settings;
    const s = settings;
    const pool = () => this.pool;
    const log = (line: string) => this.log('info', line);
    this.outcomes = new Outcomes({
      pool,
      workerId: this.workerId,
      maxRetries: s.maxRetries,
      retryBackoffBaseMs: s.retryBackoffMs,
      retryBackoffMaxMs: s.retryBackoffMaxMs,
      modelId: (fn) => this.models[modelRoleOf(fn)] ?? null,
      metrics: () => this.metrics,
      forget: (h) => this.forget(h),
      wake: () => this.producer?.wake(),
      log: (level, line) => this.log(level, line),
    });
    this.pipelineRecorder = new PipelineRecorder({
      pool,
      workerId: this.workerId,
      retryBackoffMs: s.retryBackoffMs,
      retryBackoffMaxMs: s.retryBackoffMaxMs,
      metrics: () => this.metrics,
      wakeIn: (ms) => this.pipelines?.wakeIn(ms),
      log: (level, line) => this.log(level, line),
    });
    this.cancelChecks = new CancelChecks({
      pool,
      workerId: this.workerId,
      held: (id) => this.held.get(id),
      cancel: (id) => this.cancelHeld(id),
      log,
    });
    this.services = {
      heartbeat: new HeartbeatService({
        intervalMs: s.heartbeatIntervalMs,
        pool,
        workerId: this.workerId,
        currentJobs: () => this.stats.running,
        stopping: () => this.stopping,
        register: (db) => registerWorker(db, this.registration()),
        log,
        onRun: (r) => this.events.emit('heartbeat', r),
      }),
      reclaim: new ReclaimService({
        intervalMs: s.heartbeatIntervalMs,
        pool,
        workerId: this.workerId,
        maxRetries: s.maxRetries,
        log,
        onRun: (jobs) => {
          if (jobs.length > 0) this.producer?.wake();
          this.events.emit('reclaimed', jobs);
        },
        onPipelineRows: (rows) => {
          this.pipelines?.wake();
          this.events.emit('pipelineReclaimed', rows);
        },
      }),
      cacheEviction: new CacheEvictionService({
        intervalMs: s.cacheEvictIntervalMs,
        pool,
        log,
        debug: (line) => this.log('debug', line),
        onRun: (n) => this.events.emit('evicted', n),
      }),
      retention:
        s.resultRetentionMs === undefined
          ? undefined
          : new RetentionService({
              intervalMs: s.resultCleanupIntervalMs,
              pool,
              olderThanMs: s.resultRetentionMs,
              batchSize: s.resultCleanupBatchSize,
              log,
              onRun: (r) => this.events.emit('cleanedUp', r),
            }),
    };
  }

  get workerId(): string {
    return this.settings.workerId;
  }

  get stats(): WorkerStats {
    let running = 0;
    let buffered = 0;
    for (const h of this.held.values()) {
      if (h.state === 'running') running++;
      else if (h.state === 'buffered') buffered++;
    }
    return {
      workerId: this.workerId,
      running,
      buffered,
      jobsCompleted: this.outcomes.jobsCompleted,
      jobsFailed: this.outcomes.jobsFailed,
      resultsDiscarded: this.outcomes.resultsDiscarded,
      pipelineRows: { ...this.pipelineRecorder.rows },
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

  /** The job types this worker claims; null: every type (the claim then has no function filter). */
  private served: FunctionName[] | null = null;

  private log(level: 'info' | 'debug', line: string): void {
    const s = this.settings;
    if (s.logLevel === 'silent' || (level === 'debug' && s.logLevel !== 'debug')) return;
    const text = `[steadytext-worker ${this.workerId}] ${line}`;
    if (s.log) s.log(text);
    else process.stderr.write(text + '\n');
  }

  /** A start, metrics or stop line: to settings.announce when set, else to the log. */
  private announce(line: string): void {
    if (this.settings.announce) this.settings.announce(line);
    else this.log('info', line);
  }

  /** Loads the engine, registers the worker, starts listening and claiming. */
  async start(): Promise<void> {
    const s = this.settings;
    try {
      this.engine = s.engine ?? (await loadWorkerEngine(s));
      this.ownsEngine = !s.engine;
      this.models = engineModelIds(this.engine);
      // A job type the engine refuses is not claimed at all: failing it here
      // would spend the job on a worker that can never run it, while another
      // worker (another server, or the local engine) may serve it.
      const refusals = engineRefusals(this.engine);
      const refused = new Set(refusals.map((r) => r.function));
      this.served = refused.size > 0 ? FUNCTION_NAMES.filter((fn) => !refused.has(fn)) : null;
      const byReason = new Map<string, FunctionName[]>();
      for (const r of refusals) byReason.set(r.reason, [...(byReason.get(r.reason) ?? []), r.function]);
      for (const [reason, fns] of byReason) {
        this.log('info', `will not take ${fns.join(', ')} jobs (they stay pending for a worker that serves them): ${reason}`);
      }
      // A schema older or newer than this code: say what to run (SchemaVersionError), touch nothing.
      const installed = await withRetries(async () => {
        const probe = new pg.Client(s.connection);
        try {
          await probe.connect();
          return await assertSchemaVersion(probe);
        } finally {
          await probe.end().catch(() => {});
        }
      });
      // Every connection of the pool starts with the pinned search_path.
      this.pool = new pg.Pool({
        ...withPinnedSearchPath(s.connection, installed.schema),
        // The claim, the completer, the heartbeat and the services; the pipeline claim and write beside them.
        max: s.concurrency + 3 + (s.pipelines ? 2 : 0),
        application_name: 'steadytext-worker',
      });
      this.pool.on('error', (err) => this.log('info', `idle connection error: ${err.message}`));
      const pool = this.pool;
      // The metrics port first: a port in use fails the start before this
      // worker is registered anywhere.
      if (s.metricsPort !== undefined) {
        ({ metrics: this.metrics, server: this.metricsServer } = await startWorkerMetrics(this, (line) => this.log('info', line)));
        this.announce(`metrics: ${this.metricsServer.url}/metrics, health: ${this.metricsServer.url}/health`);
      }
      // Jobs an earlier process left under this same worker_id count as crashed.
      await withRetries(() => reclaimStale(pool, s.maxRetries, { restartOf: this.workerId }));
      // Its pipeline rows too (the row registerWorker revives next would make
      // that process look alive, its rows held for good).
      await withRetries(() => reclaimPipelineRows(pool, { restartOf: this.workerId }));
      await withRetries(() => registerWorker(pool, this.registration()));
      // (pipelines only: afterReconnect compares it)
      if (s.pipelines) this.serverStartedAt = await withRetries(() => serverStartTime(pool));
      await withRetries(() => writeModelIds(pool, this.models));
      this.listener = new Listener({
        connection: s.connection,
        channels: s.pipelines ? [CHANNEL_NEW_JOB, CHANNEL_CANCELLED, CHANNEL_PIPELINE] : [CHANNEL_NEW_JOB, CHANNEL_CANCELLED],
        onNotification: (channel, payload) => this.onNotification(channel, payload),
        onReconnect: () => void this.afterReconnect(),
        log: (line) => this.log('info', line),
      });
      await withRetries(() => this.listener!.start());
    } catch (err) {
      await this.teardown();
      throw err;
    }
    // One policy sizes the claims: the producer asks it, the executor informs it.
    const policy = new ClaimPolicy({
      concurrency: s.concurrency,
      prefetch: s.prefetch,
      batchEmbeddings: s.batchEmbeddings,
      embedBatchSize: s.embedBatchSize,
    });
    const engine = this.engine;
    if (s.pipelines) {
      this.pipelines = new PipelineRunner({
        pool: () => this.pool,
        workerId: this.workerId,
        engine: () => engine,
        models: () => this.models,
        served: () => this.served,
        batchSize: s.pipelineBatchSize,
        timeoutSeconds: s.timeoutSeconds,
        pollIntervalMs: s.pollIntervalMs,
        slots: () => this.executor,
        recorder: this.pipelineRecorder,
        log: (level, line) => this.log(level, line),
      });
    }
    this.executor = new Executor({
      engine: this.engine,
      concurrency: s.concurrency,
      batchEmbeddings: s.batchEmbeddings,
      embedBatchSize: s.embedBatchSize,
      timeoutSeconds: s.timeoutSeconds,
      policy,
      onOutcome: (h, outcome) => this.outcomes.record(h, outcome),
      onTake: () => {
        this.producer?.wake();
        this.pipelines?.nudge();
      },
      side: this.pipelines,
      markStarted: (jobs) => {
        const pool = this.pool;
        if (!pool) return Promise.reject(new Error('worker stopped'));
        return withRetries(() =>
          markStarted(
            pool,
            this.workerId,
            jobs.map((h) => ({ requestId: h.job.request_id, attempt: h.job.attempt })),
          ),
        );
      },
      onLost: (h) => {
        this.forget(h);
        this.outcomes.discarded(h);
        this.log('debug', `job ${h.job.request_id} dropped before it started: no longer this worker's claim`);
      },
      log: (line) => this.log('debug', line),
    });
    this.producer = new Producer({
      claim: (limit, only, startNow) => claimJobs(this.pool!, this.workerId, limit, s.maxRetries, only, this.served, startNow),
      policy,
      buffer: () => this.executor!,
      accept: (jobs) => this.accept(jobs),
      releaseOrphans: () => this.releaseOrphans(),
      orphanCheckEveryMs: s.heartbeatTimeoutSeconds * 1000,
      pollIntervalMs: s.pollIntervalMs,
      log: (line) => this.log('info', line),
    });
    for (const service of this.periodic()) service.start();
    this.producer.start();
    this.pipelines?.start();
    const models = Object.entries(this.models).map(([role, id]) => `${role}=${id}`).join(', ') || 'none';
    this.announce(
      `started (concurrency ${s.concurrency}, prefetch ${s.prefetch ?? 'auto'}, embed batch ${s.batchEmbeddings ? s.embedBatchSize : 1}, pipelines ${s.pipelines ? `on (batch ${s.pipelineBatchSize})` : 'off'}, poll ${s.pollIntervalMs / 1000} s; models ${models})`,
    );
  }

  private periodic() {
    return Object.values(this.services).filter((service) => service !== undefined);
  }

  private registration() {
    return {
      workerId: this.workerId,
      host: hostname(),
      pid: process.pid,
      concurrency: this.settings.concurrency,
      heartbeatTimeoutSeconds: this.settings.heartbeatTimeoutSeconds,
      version: packageVersion(),
      models: this.models as Record<string, string>,
      servedFunctions: this.served,
      jobsCompleted: this.outcomes.jobsCompleted,
      jobsFailed: this.outcomes.jobsFailed,
    };
  }

  // ------------------------------------------------------------ claiming

  private accept(jobs: ClaimedJob[]): void {
    if (jobs.length === 0) return;
    const entries = jobs.map((job) => {
      // Held already under an older claim: that claim was taken back (another
      // worker reclaimed it while this one's heartbeat was late) and this
      // claim replaces it. A buffered old copy is dropped; a running one
      // runs on, its result refused by the attempt guard.
      const old = this.held.get(job.request_id);
      if (old && old.state === 'buffered' && this.executor!.remove(job.request_id) === old) this.outcomes.discarded(old);
      const h = holdJob(job);
      this.held.set(job.request_id, h);
      return h;
    });
    this.executor!.add(entries);
  }

  /** Forgets a job this worker held, unless a newer claim of the same request replaced it. */
  private forget(h: HeldJob): void {
    if (this.held.get(h.job.request_id) === h) this.held.delete(h.job.request_id);
  }

  /**
   * Every heartbeat timeout, between two claims (so every claim whose reply
   * arrived is held): claims this worker holds in the database but not here,
   * left by a reply lost after its commit, go back to pending.
   */
  private async releaseOrphans(): Promise<void> {
    try {
      const ids = await withRetries(() => releaseOrphans(this.pool!, this.workerId, [...this.held.keys()]));
      if (ids.length > 0) this.log('info', `released ${ids.length} claim(s) this worker held but was not running (reply lost)`);
    } catch (err) {
      this.log('info', `orphan check failed: ${(err as Error).message}`);
    }
  }

  /**
   * The listen connection is back. If the server restarted meanwhile (a
   * crash, a failover), a pipeline write it acknowledged may be gone with the
   * last commits (they do not wait for the disk; docs/pipelines.md): its rows
   * would stay 'processing' under this live worker for good. So every row
   * this worker holds goes back to pending first, as at a start; a batch
   * still here then finds its rows no longer its own and is computed again.
   */
  private async afterReconnect(): Promise<void> {
    try {
      const pool = this.pool;
      if (pool && this.pipelines) {
        const started = await withRetries(() => serverStartTime(pool));
        if (started !== this.serverStartedAt) {
          const n = await withRetries(() => reclaimPipelineRows(pool, { restartOf: this.workerId }));
          this.serverStartedAt = started;
          this.log('info', `the server restarted: ${n} pipeline row(s) this worker held are pending again`);
        }
      }
    } catch (err) {
      this.log('info', `restart check failed: ${(err as Error).message}`);
    }
    this.producer?.wake();
    this.pipelines?.wake();
  }

  // ------------------------------------------------------------ notifications and cancel

  private onNotification(channel: string, payload: string): void {
    if (channel === CHANNEL_NEW_JOB) {
      this.producer?.wake();
    } else if (channel === CHANNEL_PIPELINE) {
      this.pipelines?.wake();
    } else if (channel === CHANNEL_CANCELLED) {
      this.cancelChecks.check(payload.trim());
    }
  }

  /** The row says cancelled under this worker's claim (CancelChecks): abort the job, or drop it from the buffer. */
  private cancelHeld(id: string): void {
    const h = this.held.get(id);
    if (!h || h.controller.signal.aborted) return;
    this.log('debug', `job ${id} cancelled`);
    if (h.state === 'buffered' && this.executor!.remove(id)) {
      this.forget(h);
      this.outcomes.discarded(h);
    } else if (h.state === 'running') {
      h.controller.abort(new Cancelled());
    }
  }

  // ------------------------------------------------------------ stop

  /**
   * Graceful stop: no new claims; jobs claimed ahead and not started go back
   * to pending at once; running jobs get up to shutdownGraceMs to finish and
   * have their results stored; the rest are aborted and released to pending
   * (no retry counted); the worker row ends 'stopped'. Pipeline batches the
   * same: the one claimed ahead goes back at once, running ones get the
   * grace, then their rows not computed go back. Safe to call more than once.
   */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    this.stopping = true;
    // No more reclaim, eviction or retention runs; the heartbeat goes on
    // through the grace (the jobs still running stay this worker's).
    const { heartbeat, ...others } = this.services;
    const othersStopped = Promise.all(Object.values(others).map((service) => service?.stop()));
    // No more claims of either kind; the pipeline batch claimed ahead goes back at once.
    await Promise.all([this.producer?.stop(), this.pipelines?.stop()]);
    const pool = this.pool;
    const buffered = this.executor?.drain() ?? [];
    for (const h of buffered) this.forget(h);
    await this.outcomes.release(buffered.map((h) => h.job.request_id));
    if (pool) await heartbeat.runNow();
    if (this.held.size > 0 || this.pipelines?.busy) {
      this.log(
        'info',
        `stopping: waiting up to ${this.settings.shutdownGraceMs / 1000} s for ${this.held.size} job(s)${this.pipelines?.busy ? ' and the pipeline batches running' : ''}`,
      );
      let graceTimer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.settled(),
        new Promise<void>((r) => (graceTimer = setTimeout(r, this.settings.shutdownGraceMs))),
      ]);
      clearTimeout(graceTimer);
    }
    for (const h of this.held.values()) if (h.state === 'running') h.controller.abort(new Shutdown());
    this.pipelines?.abort();
    this.outcomes.abandon();
    await this.settled();
    await this.outcomes.release([...this.held.keys()]);
    this.held.clear();
    await Promise.all([heartbeat.stop(), othersStopped]);
    if (pool) {
      await withRetries(() => markWorkerStopped(pool, this.workerId)).catch((err) =>
        this.log('info', `could not mark the worker stopped: ${(err as Error).message}`),
      );
    }
    await this.teardown();
    const { jobsCompleted, jobsFailed, released } = this.outcomes;
    const { written, failed } = this.pipelineRecorder.rows;
    const pipelineRows = written + failed > 0 ? `; pipeline rows: ${written} written, ${failed} failed` : '';
    this.announce(`stopped (${jobsCompleted} completed, ${jobsFailed} failed, ${released} released${pipelineRows})`);
  }

  /** Resolves once no engine call is in flight and every outcome is recorded. */
  private async settled(): Promise<void> {
    for (;;) {
      await this.executor?.idle();
      if (!this.outcomes.busy && !this.pipelines?.busy) return;
      await Promise.all([this.outcomes.recorded(), this.pipelines?.settled()]);
    }
  }

  private async teardown(): Promise<void> {
    await Promise.all(this.periodic().map((service) => service.stop()));
    this.outcomes.close();
    await this.listener?.close();
    await this.metricsServer?.close();
    await this.pool?.end().catch(() => {});
    this.pool = undefined;
    if (this.ownsEngine) await this.engine?.dispose().catch(() => {});
  }
}
