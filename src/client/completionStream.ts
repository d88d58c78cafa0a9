// `for await (const done of st.completions())`: every NOTIFY
// steadytext_completed, on a connection of its own taken from the pool.
// Breaking out of the loop (or return()/the AbortSignal) UNLISTENs and gives
// the connection back.
import type pg from 'pg';
import { CHANNEL_COMPLETED, type CompletionPayload, type FunctionName } from '../interfaces.ts';

export interface CompletionsOptions {
  /** Only completions of these functions. */
  functions?: FunctionName[];
  /** Only completions of this batch (steadytext_queue.batch_id). */
  batchId?: string;
  /** Ends the iteration (the loop sees `done`). */
  signal?: AbortSignal;
}

export class CompletionStream implements AsyncIterableIterator<CompletionPayload> {
  /** Resolves once the LISTEN is active: completions committed after that are all seen. */
  readonly ready: Promise<void>;
  private readonly buffer: CompletionPayload[] = [];
  private waiter: { resolve: () => void } | null = null;
  private client: pg.PoolClient | null = null;
  private finished = false;
  private failure: Error | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly opts: CompletionsOptions = {},
    private readonly onClose: (s: CompletionStream) => void = () => {},
  ) {
    this.ready = this.start();
    this.ready.catch(() => {}); // surfaced by next()
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<CompletionPayload, undefined>> {
    await this.ready;
    for (;;) {
      const value = this.buffer.shift();
      if (value) return { value, done: false };
      if (this.failure) {
        const err = this.failure;
        this.failure = null;
        await this.close();
        throw err;
      }
      if (this.finished) return { value: undefined, done: true };
      await new Promise<void>((resolve) => (this.waiter = { resolve }));
    }
  }

  async return(): Promise<IteratorResult<CompletionPayload, undefined>> {
    await this.close();
    return { value: undefined, done: true };
  }

  /** Stops listening and gives the connection back. Idempotent. */
  async close(): Promise<void> {
    if (!this.finished) {
      this.finished = true;
      this.opts.signal?.removeEventListener('abort', this.onAbort);
      this.wake();
      this.onClose(this);
    }
    await this.ready.catch(() => {});
    await this.releaseClient();
  }

  private async releaseClient(): Promise<void> {
    const c = this.client;
    if (!c) return;
    this.client = null;
    try {
      await c.query(`UNLISTEN ${CHANNEL_COMPLETED}`);
      this.detach(c);
      c.release();
    } catch (err) {
      this.detach(c);
      c.release(err as Error);
    }
  }

  private async start(): Promise<void> {
    if (this.opts.signal?.aborted) {
      this.finished = true;
      return;
    }
    const c = await this.pool.connect();
    c.on('notification', this.onNotification);
    c.on('error', this.onError);
    try {
      await c.query(`LISTEN ${CHANNEL_COMPLETED}`);
    } catch (err) {
      this.detach(c);
      c.release(err as Error);
      throw err;
    }
    this.client = c;
    // close() may have run while connecting
    if (this.finished) await this.releaseClient();
  }

  private readonly onNotification = (msg: pg.Notification) => {
    if (this.finished || msg.channel !== CHANNEL_COMPLETED || !msg.payload) return;
    let p: CompletionPayload;
    try {
      p = JSON.parse(msg.payload) as CompletionPayload;
    } catch {
      return;
    }
    if (this.opts.functions && !this.opts.functions.includes(p.function)) return;
    if (this.opts.batchId && p.batch_id !== this.opts.batchId) return;
    this.buffer.push(p);
    this.wake();
  };

  private readonly onError = (err: Error) => {
    const c = this.client;
    this.client = null;
    if (c) {
      this.detach(c);
      c.release(err);
    }
    if (!this.finished) this.failure = err;
    this.wake();
  };

  private readonly onAbort = () => {
    void this.close();
  };

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.resolve();
  }

  private detach(c: pg.PoolClient): void {
    c.off('notification', this.onNotification);
    c.off('error', this.onError);
  }
}
