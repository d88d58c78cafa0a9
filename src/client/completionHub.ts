// One LISTEN steadytext_completed connection shared by every wait of a
// SteadyText instance. Waiters register the ids they care about; the
// connection is taken from the pool when the first waiter arrives and given
// back (after UNLISTEN) when the last one leaves, so `pool.end()` is never
// held up by an idle listener.
import type pg from 'pg';
import { CHANNEL_COMPLETED, type CompletionPayload } from '../interfaces.ts';

/** Called with the id that completed, or with null: "notifications may have been lost, check everything". */
type Wake = (requestId: string | null) => void;

export class CompletionHub {
  private readonly byId = new Map<string, Set<Wake>>();
  private readonly all = new Set<Wake>();
  private client: pg.PoolClient | null = null;
  /** Connects, disconnects and reconnects run one at a time, in order. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly pool: pg.Pool,
    private readonly channel = CHANNEL_COMPLETED,
  ) {}

  /**
   * Calls `wake` when any of `requestIds` completes. Resolves once the LISTEN is
   * active, so a completion committed after this resolves is never missed.
   * Returns the function that unregisters.
   */
  async watch(requestIds: Iterable<string>, wake: Wake): Promise<() => void> {
    const ids = [...new Set(requestIds)];
    for (const id of ids) {
      let set = this.byId.get(id);
      if (!set) this.byId.set(id, (set = new Set()));
      set.add(wake);
    }
    this.all.add(wake);
    const unwatch = () => {
      if (!this.all.delete(wake)) return;
      for (const id of ids) {
        const set = this.byId.get(id);
        set?.delete(wake);
        if (set?.size === 0) this.byId.delete(id);
      }
      if (this.all.size === 0) void this.serial(() => this.stopIfIdle());
    };
    try {
      await this.serial(() => this.ensureListening());
    } catch (err) {
      unwatch();
      throw err;
    }
    return unwatch;
  }

  /** Gives the connection back now (waits still registered will fail to hear anything). */
  async close(): Promise<void> {
    await this.serial(() => this.disconnect());
  }

  private serial(step: () => Promise<void>): Promise<void> {
    const run = this.chain.then(step);
    this.chain = run.catch(() => {});
    return run;
  }

  private readonly onNotification = (msg: pg.Notification) => {
    if (msg.channel !== this.channel || !msg.payload) return;
    let payload: CompletionPayload;
    try {
      payload = JSON.parse(msg.payload) as CompletionPayload;
    } catch {
      return;
    }
    for (const wake of this.byId.get(payload.request_id) ?? []) wake(payload.request_id);
  };

  private readonly onError = (err: Error) => {
    const c = this.client;
    if (!c) return;
    this.client = null;
    this.detach(c);
    c.release(err);
    if (this.all.size > 0) void this.serial(() => this.reconnect());
  };

  private async ensureListening(): Promise<void> {
    if (this.client || this.all.size === 0) return;
    const c = await this.pool.connect();
    c.on('notification', this.onNotification);
    c.on('error', this.onError);
    try {
      await c.query(`LISTEN ${this.channel}`);
    } catch (err) {
      this.detach(c);
      c.release(err as Error);
      throw err;
    }
    this.client = c;
  }

  /** After a lost connection: listen again with backoff, then tell every waiter to check. */
  private async reconnect(): Promise<void> {
    for (let attempt = 0; this.all.size > 0 && !this.client; attempt++) {
      try {
        await this.ensureListening();
      } catch {
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 5000)));
      }
    }
    for (const wake of [...this.all]) wake(null);
  }

  private async stopIfIdle(): Promise<void> {
    if (this.all.size === 0) await this.disconnect();
  }

  private async disconnect(): Promise<void> {
    const c = this.client;
    if (!c) return;
    this.client = null;
    try {
      await c.query(`UNLISTEN ${this.channel}`);
      this.detach(c);
      c.release();
    } catch (err) {
      this.detach(c);
      c.release(err as Error);
    }
  }

  private detach(c: pg.PoolClient): void {
    c.off('notification', this.onNotification);
    c.off('error', this.onError);
  }
}
