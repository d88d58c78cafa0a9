// What becomes of each row of a pipeline batch once its engine time is over:
// the computed rows (results, and the inputs the engine refused) in ONE
// _steadytext_pipeline_write; rows hit by a fault of the machine back to
// pending with backoff (_steadytext_pipeline_release, an attempt counted);
// rows not run (the worker stopping, the slot given to a queue job) back at
// once with none; a batch whose vectors do not fit the destination refused
// (_steadytext_pipeline_refuse). Counts every row's outcome for the stats and
// /metrics.
import { refusePipelineRows } from '../../db/pipelines/refusePipelineRows.ts';
import { releasePipelineRows } from '../../db/pipelines/releasePipelineRows.ts';
import {
  writePipelineBatch,
  type PipelineClaimRef,
  type PipelineRowResult,
  type PipelineWriteOutcome,
} from '../../db/pipelines/writePipelineBatch.ts';
import type { PipelineRow } from '../../db/pipelines/claimPipelineBatch.ts';
import type { Queryable } from '../../db/queryable.ts';
import { withRetries } from '../../postgres/withRetries.ts';
import type { WorkerMetrics } from '../metrics.ts';
import type { PipelineBatch } from './batch.ts';
import type { BatchRun } from './runBatch.ts';
import { WriteLanes } from './writeLanes.ts';

/**
 * How a pipeline row left this worker: the write's outcomes, or `retried`
 * (an engine fault: pending again after a backoff, an attempt counted),
 * `released` (let go unrun: no attempt counted), `refused` (the pipeline
 * cannot run on this model).
 */
export type PipelineRowOutcome = PipelineWriteOutcome | 'retried' | 'released' | 'refused';

export interface RecordBatchOptions {
  /** The worker's pool; undefined before its start and after its stop. */
  pool(): Queryable | undefined;
  workerId: string;
  /** Backoff after a batch's engine fault, doubled for each further fault of the same pipeline, up to the max. */
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  metrics(): WorkerMetrics | undefined;
  /** Released rows are claimable again in `ms`: look for pipeline work then. */
  wakeIn(ms: number): void;
  log(level: 'info' | 'debug', line: string): void;
}

/** A release that failed (the database away): tried again later, so no row stays held by a live worker for good. */
interface Owed {
  batch: PipelineBatch;
  rows: PipelineRow[];
  error: string | null;
  retryInSeconds: number;
}

const ref = (row: PipelineRow): PipelineClaimRef => ({ row_key: row.row_key, claim: row.claim });

export class PipelineRecorder {
  /** Pipeline rows this worker is done with, by how each ended. */
  readonly rows: Record<PipelineRowOutcome, number> = {
    written: 0,
    stale: 0,
    busy: 0,
    failed: 0,
    lost: 0,
    retried: 0,
    released: 0,
    refused: 0,
  };
  /** Pipeline id → batches in a row that met an engine fault (the backoff grows with it). */
  private readonly faults = new Map<number, number>();
  private readonly recording = new Set<Promise<void>>();
  private owed: Owed[] = [];
  /**
   * When each write may run (writeLanes.ts): two of one pipeline at once,
   * another pipeline's alone (two pipelines over one table would lock each
   * other's source rows). A write is off the engine's path.
   */
  private readonly lanes = new WriteLanes();

  constructor(private readonly o: RecordBatchOptions) {}

  /** True while an outcome is being written. */
  get busy(): boolean {
    return this.recording.size > 0;
  }

  /** Batches whose results are being written or wait for their turn: the runner claims no further ahead than this allows. */
  get writeBacklog(): number {
    return this.lanes.backlog;
  }

  /** Resolves once the outcomes being written now are. */
  async recorded(): Promise<void> {
    await Promise.allSettled([...this.recording]);
  }

  /** A batch's engine time is over: record what became of each row (the slot already runs the next batch). */
  record(batch: PipelineBatch, run: BatchRun): void {
    batch.state = 'recording';
    this.track(this.recordRun(batch, run));
  }

  /** Rows let go unrun (a batch claimed ahead at stop): back to pending at once, no attempt counted. */
  releaseUnrun(batch: PipelineBatch): Promise<void> {
    const p = this.release(batch, batch.rows, null, 0);
    this.track(p);
    return p;
  }

  /** Tries the releases that failed again (each pass of the runner, and at stop). */
  async retryOwed(): Promise<void> {
    const owed = this.owed;
    this.owed = [];
    for (const x of owed) await this.release(x.batch, x.rows, x.error, x.retryInSeconds);
  }

  private track(p: Promise<void>): void {
    const guarded = p.catch((err) => this.o.log('info', `pipeline outcome not recorded: ${(err as Error).message}`));
    this.recording.add(guarded);
    void guarded.finally(() => this.recording.delete(guarded));
  }

  private count(batch: PipelineBatch, outcome: PipelineRowOutcome, n: number): void {
    if (n <= 0) return;
    this.rows[outcome] += n;
    this.o.metrics()?.pipelineRows(batch.name, outcome, n);
  }

  /** Seconds before rows hit by an engine fault are claimable again: the retry backoff, doubled per fault in a row. */
  private backoffSeconds(pipelineId: number): number {
    const n = (this.faults.get(pipelineId) ?? 0) + 1;
    this.faults.set(pipelineId, n);
    return Math.min(this.o.retryBackoffMaxMs, this.o.retryBackoffMs * 2 ** Math.min(n - 1, 30)) / 1000;
  }

  private async recordRun(batch: PipelineBatch, run: BatchRun): Promise<void> {
    if (run.refusal !== undefined) return this.refuse(batch, run.refusal);
    const computed: PipelineRowResult[] = [];
    const faulted: PipelineRow[] = [];
    const unrun: PipelineRow[] = [];
    let fault: string | undefined;
    run.outcomes.forEach((x, i) => {
      const row = batch.rows[i];
      const base = { ...ref(row), input_hash: row.input_hash };
      if (x.kind === 'result') computed.push({ ...base, result: x.result });
      else if (x.kind === 'vector') computed.push({ ...base, vector: x.vector });
      else if (x.kind === 'error') computed.push({ ...base, error: x.error });
      else if (x.kind === 'fault') {
        faulted.push(row);
        fault ??= x.error;
      } else unrun.push(row);
    });
    let delay = 0;
    if (fault === undefined) this.faults.delete(batch.pipelineId);
    else {
      delay = this.backoffSeconds(batch.pipelineId);
      this.o.log('info', `pipeline '${batch.name}': ${faulted.length} row(s) back to pending in ${delay} s after an engine fault: ${fault}`);
    }
    // Rows left unrun behind a fault wait as long as the faulted ones: the engine is likely still down.
    const written = this.lanes.run(batch.pipelineId, () => this.write(batch, computed));
    // a write done makes room in the backlog: the runner may claim again
    void written.finally(() => this.o.wakeIn(0)).catch(() => {});
    await Promise.all([
      written,
      this.release(batch, faulted, fault ?? null, delay),
      this.release(batch, unrun, null, delay),
    ]);
  }

  private async write(batch: PipelineBatch, rows: PipelineRowResult[]): Promise<void> {
    if (rows.length === 0) return;
    const pool = this.o.pool();
    if (!pool) {
      this.o.log('info', `pipeline '${batch.name}': ${rows.length} result(s) not written: the worker stopped (its rows will be reclaimed)`);
      return;
    }
    let counts: Partial<Record<PipelineWriteOutcome, number>>;
    try {
      counts = await withRetries(() => writePipelineBatch(pool, batch.pipelineId, this.o.workerId, batch.modelId, rows), { attempts: 10 });
    } catch (err) {
      const message = `could not write the results: ${(err as Error).message}`;
      this.o.log('info', `pipeline '${batch.name}': ${message}`);
      const byKey = new Map(batch.rows.map((r) => [r.claim + JSON.stringify(r.row_key), r]));
      const held = rows.map((r) => byKey.get(r.claim + JSON.stringify(r.row_key))!);
      return this.release(batch, held, message, this.backoffSeconds(batch.pipelineId));
    }
    for (const [outcome, n] of Object.entries(counts) as [PipelineWriteOutcome, number][]) this.count(batch, outcome, n);
    const refused = rows.filter((r) => r.error !== undefined);
    if (counts.failed) {
      const example = refused[0]?.error;
      this.o.log(
        'info',
        `pipeline '${batch.name}': ${counts.failed} row(s) failed (steadytext_pipeline_failures('${batch.name}') says why)${example ? `, e.g. ${example}` : ''}`,
      );
    }
    this.o.log(
      'debug',
      `pipeline '${batch.name}': wrote ${rows.length} row(s): ${Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(', ') || 'none counted'}`,
    );
  }

  private async release(batch: PipelineBatch, rows: PipelineRow[], error: string | null, retryInSeconds: number): Promise<void> {
    if (rows.length === 0) return;
    const pool = this.o.pool();
    try {
      if (!pool) throw new Error('worker stopped');
      await withRetries(() => releasePipelineRows(pool, batch.pipelineId, this.o.workerId, rows.map(ref), error, retryInSeconds));
    } catch (err) {
      this.o.log('info', `pipeline '${batch.name}': could not release ${rows.length} row(s): ${(err as Error).message} (trying again)`);
      if (pool) this.owed.push({ batch, rows, error, retryInSeconds });
      return;
    }
    this.count(batch, error === null ? 'released' : 'retried', rows.length);
    this.o.wakeIn(retryInSeconds * 1000);
  }

  private async refuse(batch: PipelineBatch, message: string): Promise<void> {
    this.o.log('info', `pipeline '${batch.name}' blocked: ${message}`);
    const pool = this.o.pool();
    try {
      if (!pool) throw new Error('worker stopped');
      await withRetries(() => refusePipelineRows(pool, batch.pipelineId, this.o.workerId, batch.rows.map(ref), message));
    } catch (err) {
      this.o.log('info', `pipeline '${batch.name}': could not record the refusal: ${(err as Error).message}`);
      return this.release(batch, batch.rows, message, this.backoffSeconds(batch.pipelineId));
    }
    this.count(batch, 'refused', batch.rows.length);
  }
}
