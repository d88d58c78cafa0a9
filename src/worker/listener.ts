// The worker's one dedicated LISTEN connection (steadytext_new_job,
// steadytext_cancelled). Pooled connections cannot hold a LISTEN, so this is
// a plain pg.Client that reconnects with backoff when the connection drops;
// after a reconnect `onReconnect` runs, because notifications sent while it
// was away are lost (the worker then claims once instead of waiting a poll).
import pg from 'pg';

export interface ListenerOptions {
  connection: pg.ClientConfig;
  channels: readonly string[];
  onNotification: (channel: string, payload: string) => void;
  onReconnect: () => void;
  log: (line: string) => void;
}

export class Listener {
  private client?: pg.Client;
  private closed = false;
  private retryTimer?: NodeJS.Timeout;
  private failures = 0;

  constructor(private readonly o: ListenerOptions) {}

  /** Connects once; throws if the first connection fails (the caller decides). */
  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ ...this.o.connection, application_name: 'steadytext-worker-listen' });
    this.client = client;
    client.on('notification', (n) => this.o.onNotification(n.channel, n.payload ?? ''));
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    try {
      await client.connect();
      await client.query(this.o.channels.map((c) => `LISTEN ${c}`).join('; '));
    } catch (err) {
      this.lost(client, err);
      throw err;
    }
    this.failures = 0;
  }

  private lost(client: pg.Client, err: unknown): void {
    if (this.closed || client !== this.client) return;
    this.client = undefined;
    client.end().catch(() => {});
    const delay = Math.min(5000, 100 * 2 ** this.failures++);
    this.o.log(`listen connection lost (${(err as Error)?.message ?? err}); reconnecting in ${Math.round(delay)} ms`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.closed) return;
      this.connect().then(
        () => {
          this.o.log('listen connection restored');
          this.o.onReconnect();
        },
        () => {}, // lost() scheduled the next try
      );
    }, delay);
  }

  /** True while LISTENing. */
  get connected(): boolean {
    return this.client !== undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => {});
  }
}
