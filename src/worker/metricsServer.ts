// The worker's HTTP endpoint (node:http): GET /metrics (Prometheus text) and
// GET /health (JSON; 200 healthy, 503 when the database is unreachable, the
// worker's heartbeat is stale, or the worker is stopping). It has its own
// small pool, so a scrape never waits for a job's connection. No login: it
// binds to 127.0.0.1 unless told otherwise, and what it answers names no
// database error (those go to the worker's log).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { isNoPipelinesError, pipelineStatus } from '../db/pipelines/pipelineStatus.ts';
import { queueCounts } from '../db/queue/queueCounts.ts';
import { readHeartbeat } from '../db/workers/readHeartbeat.ts';
import { WorkerMetrics, type MetricsSubject } from './metrics.ts';
import type { WorkerSettings } from './settings.ts';
import { defaultOf, SETTINGS } from '../settings.ts';

export interface MetricsServerOptions {
  metrics: WorkerMetrics;
  subject: MetricsSubject;
  connection: pg.ClientConfig;
  host: string;
  /** 0: any free port (read it from `address`). */
  port: number;
  /** A heartbeat older than this is unhealthy (the worker's heartbeat timeout). */
  heartbeatTimeoutSeconds: number;
  /** The operator's log (the worker's): errors callers are not shown. Default: dropped. */
  log?: (line: string) => void;
}

export interface HealthReport {
  status: 'ok' | 'stopping' | 'stale' | 'db_unreachable';
  worker_id: string;
  db: boolean;
  last_heartbeat: string | null;
  running_jobs: number;
  error?: string;
}

export class MetricsServer {
  private readonly server: Server;
  private readonly pool: pg.Pool;
  /** The database error last logged by /health, so a probe every second logs it once. */
  private lastDbError: string | null = null;
  /** Likewise for the pipeline gauges' read (steadytext_pipeline_status()). */
  private lastPipelineError: string | null = null;

  private constructor(private readonly opts: MetricsServerOptions) {
    this.pool = new pg.Pool({
      ...opts.connection,
      max: 2,
      connectionTimeoutMillis: 2000,
      query_timeout: 3000,
      idleTimeoutMillis: 10_000,
      application_name: 'steadytext-worker-metrics',
    });
    this.pool.on('error', () => {}); // an idle connection dropped; the next request reconnects
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        this.log(`metrics server: ${req.method} ${req.url}: ${err.message}`);
        send(res, 500, 'text/plain; charset=utf-8', 'internal error (see the worker log)\n');
      });
    });
  }

  static async start(opts: MetricsServerOptions): Promise<MetricsServer> {
    const s = new MetricsServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(opts.port, opts.host, () => {
        s.server.off('error', reject);
        resolve();
      });
    });
    return s;
  }

  get address(): { host: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  get url(): string {
    const { host, port } = this.address;
    const h = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
    return `http://${h}:${port}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    }
    if (path === '/metrics') {
      const [rows, pipelines] = await Promise.all([queueCounts(this.pool).catch(() => null), this.pipelines()]);
      this.opts.metrics.setQueueCounts(rows);
      this.opts.metrics.setPipelineStatus(pipelines);
      const { body, contentType } = await this.opts.metrics.render();
      return send(res, 200, contentType, body);
    }
    if (path === '/health' || path === '/healthz') {
      const report = await this.health();
      return send(res, report.status === 'ok' ? 200 : 503, 'application/json', JSON.stringify(report) + '\n');
    }
    if (path === '/') {
      return send(res, 200, 'text/plain; charset=utf-8', 'steadytext worker: /metrics, /health\n');
    }
    send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }

  /**
   * steadytext_pipeline_status() for the pipeline gauges: none where the
   * schema predates pipelines; null when it fails (logged once per distinct error).
   */
  private async pipelines() {
    try {
      const rows = await pipelineStatus(this.pool).catch((err: unknown) => {
        if (isNoPipelinesError(err)) return [];
        throw err;
      });
      this.lastPipelineError = null;
      return rows;
    } catch (err) {
      const detail = (err as Error).message;
      if (detail !== this.lastPipelineError) this.log(`metrics: cannot read steadytext_pipeline_status(): ${detail}`);
      this.lastPipelineError = detail;
      return null;
    }
  }

  async health(): Promise<HealthReport> {
    const { subject } = this.opts;
    const base = { worker_id: subject.workerId, running_jobs: subject.stats.running };
    let row;
    try {
      row = await readHeartbeat(this.pool, subject.workerId);
    } catch (err) {
      // The driver's text can name hosts, roles and databases: the log has it, the caller does not.
      const detail = (err as Error).message;
      if (detail !== this.lastDbError) this.log(`health: database unreachable: ${detail}`);
      this.lastDbError = detail;
      return { ...base, status: 'db_unreachable', db: false, last_heartbeat: null, error: 'database unreachable' };
    }
    this.lastDbError = null;
    const last = row ? row.last_heartbeat.toISOString() : null;
    if (subject.isStopping) return { ...base, status: 'stopping', db: true, last_heartbeat: last };
    if (!row || row.age_seconds > this.opts.heartbeatTimeoutSeconds) {
      return { ...base, status: 'stale', db: true, last_heartbeat: last, error: row ? 'heartbeat older than the heartbeat timeout' : 'worker row missing' };
    }
    return { ...base, status: 'ok', db: true, last_heartbeat: last };
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.pool.end().catch(() => {});
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** Starts the metrics of a worker and their server on settings.metricsHost:metricsPort; `log` gets what callers are not shown. */
export async function startWorkerMetrics(
  worker: MetricsSubject & {
    settings: Pick<WorkerSettings, 'connection' | 'metricsHost' | 'metricsPort' | 'heartbeatTimeoutSeconds' | 'concurrency'>;
  },
  log?: (line: string) => void,
): Promise<{ metrics: WorkerMetrics; server: MetricsServer }> {
  const s = worker.settings;
  const metrics = new WorkerMetrics(worker);
  const server = await MetricsServer.start({
    metrics,
    subject: worker,
    connection: s.connection,
    host: s.metricsHost ?? (defaultOf(SETTINGS.metricsHost) as string),
    port: s.metricsPort ?? 0,
    heartbeatTimeoutSeconds: s.heartbeatTimeoutSeconds,
    log,
  });
  return { metrics, server };
}
