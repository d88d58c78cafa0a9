// Prometheus metrics of one worker (prom-client, a registry of its own so two
// workers in one process never share series). The worker reports each job's
// end through jobSettled(); queue gauges are read from the database at scrape
// time (metricsServer.ts), and so are the pipeline gauges
// (steadytext_pipeline_status()). Metric names: see docs/metrics.md.
import { hostname } from 'node:os';
import client from 'prom-client';
import type { ModelRole } from '../engine/types.ts';
import { FUNCTION_NAMES, type FunctionName, type JobStatus } from '../interfaces.ts';
import { modelRoleOf } from '../jobTypes.ts';
import type { PipelineStatusRow } from '../db/pipelines/pipelineStatus.ts';
import type { QueueCount } from '../db/queue/queueCounts.ts';
import { MODEL_ROLES } from './engine.ts';
import type { PipelineRowOutcome } from './pipelines/recordBatch.ts';
import { packageVersion } from './version.ts';

/** How one attempt of a job ended, as this worker saw it. */
export type JobOutcome = 'completed' | 'failed' | 'retried' | 'discarded';
const OUTCOMES: readonly JobOutcome[] = ['completed', 'failed', 'retried', 'discarded'];
const QUEUE_STATUSES: readonly JobStatus[] = ['pending', 'processing', 'completed', 'failed', 'cancelled'];

/** The per-pipeline gauges (label `pipeline`), each read off a steadytext_pipeline_status() row at scrape time. */
const PIPELINE_GAUGES: readonly { name: string; help: string; value: (p: PipelineStatusRow) => number }[] = [
  { name: 'steadytext_pipeline_rows', help: 'Live source rows of the pipeline (an estimate while its first backfill scans)', value: (p) => p.rows },
  { name: 'steadytext_pipeline_done_rows', help: 'Rows holding the result of their current input on the current model and parameters', value: (p) => p.done },
  { name: 'steadytext_pipeline_pending_rows', help: 'Rows waiting to be computed (new, changed or stale)', value: (p) => p.pending },
  { name: 'steadytext_pipeline_processing_rows', help: "Rows in a worker's batch now", value: (p) => p.processing },
  { name: 'steadytext_pipeline_failed_rows', help: 'Rows that failed (steadytext_pipeline_failures)', value: (p) => p.failed },
  { name: 'steadytext_pipeline_stale_rows', help: 'Rows holding a value of an older model or parameters (readable, being recomputed)', value: (p) => p.stale },
  { name: 'steadytext_pipeline_coverage_ratio', help: 'done / rows (0..1)', value: (p) => p.coverage / 100 },
  { name: 'steadytext_pipeline_lag_seconds', help: 'Age of the oldest pending change (0 when nothing is pending)', value: (p) => p.lag_seconds ?? 0 },
  { name: 'steadytext_pipeline_paused', help: '1 while the pipeline is paused', value: (p) => (p.paused ? 1 : 0) },
];

/** Seconds; from a cached answer (ms) to a long generation (minutes). */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** What the metrics read off the worker at scrape time. */
export interface MetricsSubject {
  readonly workerId: string;
  readonly models: Partial<Record<ModelRole, string>>;
  readonly stats: { running: number };
  readonly settings: { concurrency: number };
  /** True once stop() began. */
  readonly isStopping: boolean;
  /** The engine's own answer when it tells (an optional `isLoaded(role)`), else undefined. */
  engineModelLoaded(role: ModelRole): boolean | undefined;
}

export class WorkerMetrics {
  readonly registry = new client.Registry();
  private readonly jobs: client.Counter<'function_name' | 'status'>;
  private readonly duration: client.Histogram<'function_name' | 'status'>;
  private readonly running: client.Gauge;
  private readonly modelLoaded: client.Gauge<'role' | 'model_id'>;
  private readonly queueJobs: client.Gauge<'function_name' | 'status'>;
  private readonly queueDepth: client.Gauge;
  private readonly dbUp: client.Gauge;
  private readonly pipelineRowsTotal: client.Counter<'pipeline' | 'outcome'>;
  private readonly pipelineGauges: { gauge: client.Gauge<'pipeline'>; value: (p: PipelineStatusRow) => number }[];
  /** Roles this worker has completed a job for: their model is loaded. */
  private readonly rolesUsed = new Set<ModelRole>();

  constructor(private readonly subject: MetricsSubject) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry });
    const info = new client.Gauge({
      name: 'steadytext_worker_info',
      help: 'Always 1; the labels describe the worker',
      labelNames: ['worker_id', 'version', 'host', 'concurrency'],
      registers,
    });
    info.set(
      { worker_id: subject.workerId, version: packageVersion(), host: hostname(), concurrency: String(subject.settings.concurrency) },
      1,
    );
    this.jobs = new client.Counter({
      name: 'steadytext_worker_jobs_total',
      help: 'Job attempts this worker ended, by function and outcome (completed, failed: out of retries, retried: back to pending, discarded: no longer ours)',
      labelNames: ['function_name', 'status'],
      registers,
    });
    this.duration = new client.Histogram({
      name: 'steadytext_worker_job_duration_seconds',
      help: 'Processing time of a job attempt on this worker (claim to result), by function and outcome',
      labelNames: ['function_name', 'status'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    for (const fn of FUNCTION_NAMES) {
      for (const status of OUTCOMES) this.jobs.inc({ function_name: fn, status }, 0);
      this.duration.zero({ function_name: fn, status: 'completed' });
    }
    this.running = new client.Gauge({
      name: 'steadytext_worker_running_jobs',
      help: 'Jobs running on this worker now',
      registers,
      collect: () => this.running.set(subject.stats.running),
    });
    new client.Gauge({
      name: 'steadytext_worker_stopping',
      help: '1 while the worker is shutting down',
      registers,
      collect() {
        this.set(subject.isStopping ? 1 : 0);
      },
    });
    this.modelLoaded = new client.Gauge({
      name: 'steadytext_worker_model_loaded',
      help: "1 when the role's model is loaded (the engine's own answer, else: this worker completed a job of that role)",
      labelNames: ['role', 'model_id'],
      registers,
      collect: () => {
        for (const role of MODEL_ROLES) {
          const id = subject.models[role];
          if (!id) continue;
          const loaded = subject.engineModelLoaded(role) ?? this.rolesUsed.has(role);
          this.modelLoaded.set({ role, model_id: id }, loaded ? 1 : 0);
        }
      },
    });
    this.queueJobs = new client.Gauge({
      name: 'steadytext_queue_jobs',
      help: 'Rows of steadytext_queue by function and status (read at scrape time)',
      labelNames: ['function_name', 'status'],
      registers,
    });
    this.queueDepth = new client.Gauge({
      name: 'steadytext_queue_depth',
      help: "Rows of steadytext_queue waiting to run (status 'pending', read at scrape time)",
      registers,
    });
    this.dbUp = new client.Gauge({
      name: 'steadytext_worker_db_up',
      help: "1 when this scrape's queue query reached the database",
      registers,
    });
    this.pipelineGauges = PIPELINE_GAUGES.map((g) => ({
      gauge: new client.Gauge({ name: g.name, help: `${g.help} (read at scrape time)`, labelNames: ['pipeline'], registers }),
      value: g.value,
    }));
    this.pipelineRowsTotal = new client.Counter({
      name: 'steadytext_worker_pipeline_rows_total',
      help: 'Pipeline rows this worker handled, by pipeline and outcome (written, stale, busy, failed, lost: the write said so; retried: an engine fault; released: let go unrun; refused: the pipeline cannot run on this model)',
      labelNames: ['pipeline', 'outcome'],
      registers,
    });
  }

  /** Called by the pipeline runner: `n` rows of `pipeline` ended this way. */
  pipelineRows(pipeline: string, outcome: PipelineRowOutcome, n: number): void {
    this.pipelineRowsTotal.inc({ pipeline, outcome }, n);
  }

  /** Called by the worker when one attempt of a job ends. */
  jobSettled(functionName: FunctionName, outcome: JobOutcome, ms: number): void {
    this.jobs.inc({ function_name: functionName, status: outcome });
    if (outcome !== 'discarded') this.duration.observe({ function_name: functionName, status: outcome }, ms / 1000);
    if (outcome === 'completed') this.rolesUsed.add(modelRoleOf(functionName));
  }

  /** Sets the queue gauges from a grouped count; null: the database was unreachable. */
  setQueueCounts(rows: QueueCount[] | null): void {
    this.queueJobs.reset();
    this.queueDepth.reset();
    if (rows === null) {
      this.dbUp.set(0);
      return;
    }
    this.dbUp.set(1);
    for (const fn of FUNCTION_NAMES) for (const status of QUEUE_STATUSES) this.queueJobs.set({ function_name: fn, status }, 0);
    let depth = 0;
    for (const r of rows) {
      this.queueJobs.set({ function_name: r.function_name, status: r.status }, r.count);
      if (r.status === 'pending') depth += r.count;
    }
    this.queueDepth.set(depth);
  }

  /** Sets the pipeline gauges, one series per pipeline; null (the read failed): none. */
  setPipelineStatus(rows: PipelineStatusRow[] | null): void {
    for (const { gauge, value } of this.pipelineGauges) {
      gauge.reset(); // a dropped pipeline's series go
      for (const p of rows ?? []) gauge.set({ pipeline: p.name }, value(p));
    }
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
