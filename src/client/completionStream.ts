// `for await (const done of st.completions())`: every NOTIFY
// steadytext_completed, on a connection of its own taken from the pool.
// Breaking out of the loop (or return()/the AbortSignal) UNLISTENs and gives
// the connection back.
//
// Any login may NOTIFY steadytext_completed with any payload, so a payload is
// only a hint: each is checked against its row, read from steadytext_queue on
// the same connection with the client's own rights (a tenant reads only its
// own rows), and yielded as the row says it is. A payload whose row the
// client cannot read, or that is not in the announced final state, or that
// was already yielded (a replay), yields nothing.
import type pg from 'pg';
import { CHANNEL_COMPLETED, TERMINAL_STATUSES, type CompletionPayload, type FunctionName } from '../interfaces.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** How many yielded completions are remembered to drop replays. */
const REMEMBERED = 10_000;

interface QueueRow {
  request_id: string;
  function_name: FunctionName;
  status: string;
  batch_id: string | null;
  completed_at: string | null;
}

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
  /** Payloads heard, not yet checked against their rows (in arrival order). */
  private unchecked: CompletionPayload[] = [];
  private checking: Promise<void> | null = null;
  /** request_id, status and completed_at of what was yielded lately: a replayed NOTIFY yields nothing. */
  private readonly yielded = new Set<string>();
  private waiter: { resolve: () => void } | null = null;
  private client: pg.PoolClient | null = null;
  private finished = false;
  private failure: Error | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly opts: CompletionsOptions = {},
    private readonly onClose: (s: CompletionStream) => void = () => {},
    /** steadytext_queue, schema-qualified where the client was told a schema. */
    private readonly queueTable = 'steadytext_queue',
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
    if (typeof p?.request_id !== 'string' || !UUID.test(p.request_id) || !TERMINAL_STATUSES.includes(p.status)) return;
    this.unchecked.push(p);
    this.checking ??= this.checkAll().finally(() => (this.checking = null));
  };

  /** Checks what was heard against the rows, in batches, in order; yields what holds. */
  private async checkAll(): Promise<void> {
    while (this.unchecked.length > 0 && !this.finished) {
      const c = this.client;
      if (!c) return; // the connection is gone: onError reports it
      const heard = this.unchecked;
      this.unchecked = [];
      let rows: QueueRow[];
      try {
        rows = (
          await c.query<QueueRow>(
            `SELECT request_id::text AS request_id, function_name, status, batch_id::text AS batch_id, completed_at::text AS completed_at
             FROM ${this.queueTable} WHERE request_id = ANY($1::uuid[])`,
            [heard.map((p) => p.request_id)],
          )
        ).rows;
      } catch (err) {
        if (this.client === c && !this.finished) this.failure = err as Error; // e.g. no SELECT on the queue
        this.wake();
        return;
      }
      if (this.finished) return;
      const byId = new Map(rows.map((r) => [r.request_id, r]));
      for (const p of heard) {
        const row = byId.get(p.request_id.toLowerCase());
        if (!row || row.status !== p.status || row.function_name !== p.function || (row.batch_id ?? undefined) !== p.batch_id) continue;
        const key = `${row.request_id} ${row.status} ${row.completed_at}`;
        if (this.yielded.has(key)) continue;
        this.yielded.add(key);
        if (this.yielded.size > REMEMBERED) this.yielded.delete(this.yielded.values().next().value!);
        const done: CompletionPayload = { request_id: row.request_id, function: row.function_name, status: row.status as CompletionPayload['status'] };
        if (row.batch_id) done.batch_id = row.batch_id;
        if (this.opts.functions && !this.opts.functions.includes(done.function)) continue;
        if (this.opts.batchId && done.batch_id !== this.opts.batchId) continue;
        this.buffer.push(done);
      }
      this.wake();
    }
  }

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
