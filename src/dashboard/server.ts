// `steadytext dashboard`: one HTML page (static/, no build step) and a JSON
// API on node:http.
//
//   GET  /                 the page (static/index.html, app.js, app.css)
//   GET  /api/summary      queue depth history, stats by function, workers, failed jobs, pipelines
//   POST /api/retry/:id    steadytext_retry_failed(id): the failed job goes back to pending
//
// A sampler reads steadytext_queue_stats() every sampleIntervalMs into a ring
// buffer (the queue-depth chart and the throughput column).
//
// No login (docs/security.md, "The dashboard"): it binds to 127.0.0.1 unless
// told otherwise, answers only requests whose Host is its own (so a page on
// another site that rebinds its DNS name to this address reads nothing),
// refuses state-changing requests from any other origin, and may not be
// framed.
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import pg from 'pg';
import { defaultOf, SETTINGS } from '../settings.ts';
import { failedJobs, pipelineStatusIfAny, queueStats, retryFailed, workerStatus } from './queries.ts';
import { RingBuffer, sampleFrom, throughputPerMinute, type Sample } from './sampler.ts';

export interface DashboardOptions {
  connection: pg.ClientConfig;
  /** Default 127.0.0.1: the page can retry jobs, so it is not exposed unless asked. */
  host?: string;
  /** Default 8787; 0 for any free port. */
  port?: number;
  /** Default 2000 ms. */
  sampleIntervalMs?: number;
  /** Samples kept (default 300: 10 minutes at 2 s). */
  historySize?: number;
  /**
   * More names the dashboard answers to in `Host` besides its own address
   * (`name`: any port; `name:port`), e.g. what a reverse proxy forwards.
   */
  allowedHosts?: string[];
}

export interface FunctionSummary {
  function_name: string;
  pending: number;
  processing: number;
  completed: number;
  failed: number;
  cancelled: number;
  throughput_per_minute: number | null;
  avg_processing_seconds: number | null;
  p95_processing_seconds: number | null;
  oldest_pending_age_seconds: number | null;
}

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** On every answer: no framing (clickjacking the Retry button), no sniffing, nothing but our own files. */
const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

/** A Host header as hostname (lowercased, IPv6 in brackets) and port; null if it is not one. */
function hostKey(host: string | undefined): { hostname: string; port: number } | null {
  if (!host || !/^[^\s/?#@\\]+$/.test(host)) return null;
  try {
    const u = new URL(`http://${host}`);
    return { hostname: u.hostname, port: u.port ? Number(u.port) : 80 };
  } catch {
    return null;
  }
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
const isLoopback = (address: string) => address === '::1' || /^127\./.test(address) || address === '::ffff:127.0.0.1';
const bracketed = (address: string) => (isIP(address) === 6 ? `[${address}]` : address);

export class Dashboard {
  private readonly server: Server;
  private readonly pool: pg.Pool;
  private readonly history: RingBuffer<Sample>;
  private timer?: NodeJS.Timeout;
  private sampling?: Promise<void>;
  private lastError: string | null = null;
  /** hostname → the ports it is answered on (null: any port, an operator's name without one). */
  private ownHosts = new Map<string, Set<number> | null>();
  readonly sampleIntervalMs: number;

  private constructor(private readonly opts: DashboardOptions) {
    for (const entry of opts.allowedHosts ?? []) if (!hostKey(entry)) throw new Error(`allowedHosts: not a host name: ${entry}`);
    this.sampleIntervalMs = opts.sampleIntervalMs ?? (defaultOf(SETTINGS.sampleInterval) as number);
    this.history = new RingBuffer(opts.historySize ?? 300);
    this.pool = new pg.Pool({
      ...opts.connection,
      max: 4,
      connectionTimeoutMillis: 3000,
      query_timeout: 5000,
      application_name: 'steadytext-dashboard',
    });
    this.pool.on('error', () => {}); // an idle connection dropped; the next query reconnects
    this.server = createServer((req, res) => {
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
      this.handle(req, res).catch((err: Error) => json(res, 500, { error: err.message }));
    });
  }

  static async start(opts: DashboardOptions): Promise<Dashboard> {
    const d = new Dashboard(opts);
    await d.sample(); // first sample (and a connection check) before serving
    await new Promise<void>((resolve, reject) => {
      d.server.once('error', reject);
      d.server.listen(opts.port ?? (defaultOf(SETTINGS.dashboardPort) as number), opts.host ?? (defaultOf(SETTINGS.dashboardHost) as string), () => {
        d.server.off('error', reject);
        resolve();
      });
    });
    d.ownHosts = d.hostsAnswered();
    d.timer = setInterval(() => void d.sample(), d.sampleIntervalMs);
    return d;
  }

  /**
   * The Host values served: the bound address and port (a loopback bind also
   * as localhost, 127.0.0.1 and [::1]; a wildcard bind as loopback and every
   * address of this machine), plus the operator's allowedHosts.
   */
  private hostsAnswered(): Map<string, Set<number> | null> {
    const { address, port } = this.server.address() as AddressInfo;
    const names = new Set<string>();
    if (address === '0.0.0.0' || address === '::') {
      LOOPBACK_NAMES.forEach((n) => names.add(n));
      for (const a of Object.values(networkInterfaces()).flat()) if (a) names.add(bracketed(a.address));
    } else {
      if (isLoopback(address)) LOOPBACK_NAMES.forEach((n) => names.add(n));
      names.add(bracketed(address));
    }
    const hosts = new Map<string, Set<number> | null>([...names].map((n) => [hostKey(n)!.hostname, new Set([port])]));
    for (const entry of this.opts.allowedHosts ?? []) {
      const key = hostKey(entry)!; // checked by the constructor
      const anyPort = !/:\d+$/.test(entry);
      const ports = hosts.get(key.hostname);
      if (anyPort) hosts.set(key.hostname, null);
      else if (ports !== null) hosts.set(key.hostname, new Set([...(ports ?? []), key.port]));
    }
    return hosts;
  }

  /** Is `host` (a Host header) one this dashboard answers to? */
  private answers(host: string | undefined): boolean {
    const key = hostKey(host);
    if (!key) return false;
    const ports = this.ownHosts.get(key.hostname);
    return ports === null || (ports !== undefined && ports.has(key.port));
  }

  /**
   * A request that changes something must come from the page itself: an
   * Origin naming this very Host (http, or https behind a TLS proxy), or,
   * from a client that sends no Origin (curl), no Sec-Fetch-Site saying it
   * comes from another site.
   */
  private sameOrigin(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) {
      const site = req.headers['sec-fetch-site'];
      return site === undefined || site === 'same-origin' || site === 'none';
    }
    let u: URL;
    try {
      u = new URL(origin);
    } catch {
      return false; // 'null' (sandboxed frames, file:) and garbage
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
    try {
      return u.host === new URL(`http://${req.headers.host}`).host;
    } catch {
      return false;
    }
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    const h = a.address === '0.0.0.0' || a.address === '::' ? 'localhost' : a.address.includes(':') ? `[${a.address}]` : a.address;
    return `http://${h}:${a.port}/`;
  }

  /** Reads steadytext_queue_stats() into the history; errors are kept for the page. */
  private sample(): Promise<void> {
    this.sampling ??= queueStats(this.pool)
      .then((rows) => {
        this.history.push(sampleFrom(rows));
        this.lastError = null;
      })
      .catch((err: Error) => {
        this.lastError = err.message;
      })
      .finally(() => (this.sampling = undefined));
    return this.sampling;
  }

  /** The last sample's error (database unreachable, schema missing), or null. */
  get samplerError(): string | null {
    return this.lastError;
  }

  async summary(): Promise<Record<string, unknown>> {
    const [stats, workers, failed, pipelines] = await Promise.all([
      queueStats(this.pool),
      workerStatus(this.pool),
      failedJobs(this.pool),
      pipelineStatusIfAny(this.pool),
    ]);
    const history = this.history.toArray();
    const now = sampleFrom(stats);
    const throughput = throughputPerMinute([...history, now]);
    const byFunction = new Map<string, FunctionSummary>();
    for (const r of stats) {
      const f = byFunction.get(r.function_name) ?? {
        function_name: r.function_name,
        pending: 0,
        processing: 0,
        completed: 0,
        failed: 0,
        cancelled: 0,
        throughput_per_minute: throughput[r.function_name] ?? null,
        avg_processing_seconds: null,
        p95_processing_seconds: null,
        oldest_pending_age_seconds: null,
      };
      if (r.status in f) (f as unknown as Record<string, number>)[r.status] = r.count;
      if (r.status === 'completed') {
        f.avg_processing_seconds = r.avg_processing_seconds;
        f.p95_processing_seconds = r.p95_processing_seconds;
      }
      if (r.status === 'pending') f.oldest_pending_age_seconds = r.oldest_pending_age_seconds;
      byFunction.set(r.function_name, f);
    }
    const functions = [...byFunction.values()];
    const total = (k: 'pending' | 'processing' | 'completed' | 'failed' | 'cancelled') => functions.reduce((n, f) => n + f[k], 0);
    return {
      generated_at: new Date().toISOString(),
      sample_interval_ms: this.sampleIntervalMs,
      totals: {
        pending: total('pending'),
        processing: total('processing'),
        completed: total('completed'),
        failed: total('failed'),
        cancelled: total('cancelled'),
      },
      history: [...history, now].map((s) => ({ t: s.t, pending: s.pending, processing: s.processing })),
      functions,
      workers,
      failed,
      pipelines,
      sampler_error: this.lastError,
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // DNS rebinding: a page of another site whose name now points here sends its own name as Host.
    if (!this.answers(req.headers.host)) {
      return json(res, 403, { error: `this dashboard does not answer to Host ${JSON.stringify(req.headers.host ?? '')} (allowed hosts: --allowed-hosts)` });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD' && !this.sameOrigin(req)) {
      return json(res, 403, { error: 'cross-origin request refused' });
    }
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && STATIC[path]) {
      const { file, type } = STATIC[path];
      const body = await readFile(new URL(`./static/${file}`, import.meta.url));
      res.writeHead(200, { 'Content-Type': type });
      return void res.end(body);
    }
    if (req.method === 'GET' && path === '/api/summary') {
      try {
        return json(res, 200, await this.summary());
      } catch (err) {
        return json(res, 503, { error: `database: ${(err as Error).message}` });
      }
    }
    const retry = /^\/api\/retry\/([^/]+)$/.exec(path);
    if (retry) {
      if (req.method !== 'POST') return json(res, 405, { error: 'use POST' });
      // No cross-site posts: a page elsewhere cannot set this header without a CORS preflight we never answer.
      if (req.headers['x-steadytext-dashboard'] !== '1') return json(res, 403, { error: 'missing X-Steadytext-Dashboard header' });
      const id = decodeURIComponent(retry[1]);
      if (!UUID.test(id)) return json(res, 400, { error: `not a request id: ${id}` });
      const retried = await retryFailed(this.pool, id);
      return json(res, retried ? 200 : 409, retried ? { request_id: id, retried } : { request_id: id, retried, error: 'the request is not failed (already retried, or unknown)' });
    }
    json(res, 404, { error: 'not found' });
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.sampling;
    await this.pool.end().catch(() => {});
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

export function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  return Dashboard.start(opts);
}
