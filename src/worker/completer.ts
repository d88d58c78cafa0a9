// The completer: stores results while the next jobs run. Results that arrive
// while a completion statement is in flight go out together in the next one
// (group commit: one statement and one commit for the group, each row still
// guarded on its own, one steadytext_completed NOTIFY per row). No result
// waits on a timer, except one whose row another session holds locked: that
// one is sent again shortly, so it stalls only its own job.
//
// One bad row never fails another: when a grouped statement fails for a
// reason other than the connection, each result of the group is stored on
// its own, and a row the database refuses settles with UnstorableResult.
import { completeJobs, type Completion } from '../db/jobs/completeJobs.ts';
import type { Queryable } from '../db/queryable.ts';
import { isTransientError, withRetries } from '../postgres/withRetries.ts';
import { UnstorableResult } from './heldJob.ts';

/** true: the completion counted; false: discarded (the row is no longer this claim's); Error: not stored. */
export type StoreOutcome = boolean | Error;

interface Pending {
  completion: Completion;
  settle: (outcome: StoreOutcome) => void;
}

const MAX_GROUP = 1000;
const LOCKED_RETRY_MS = 200;

export class Completer {
  private waiting: Pending[] = [];
  private flushing?: Promise<void>;
  /** Results whose row was locked, each batch with the timer that sends it again. */
  private readonly later = new Map<NodeJS.Timeout, Pending[]>();

  constructor(
    private readonly db: () => Queryable | undefined,
    private readonly workerId: string,
  ) {}

  /** Queues a result for the next completion statement; settles once it is stored (or not). */
  store(completion: Completion): Promise<StoreOutcome> {
    return new Promise((settle) => {
      this.waiting.push({ completion, settle });
      this.flushing ??= this.flush().finally(() => (this.flushing = undefined));
    });
  }

  /** True while a result is waiting, in flight, or waiting on a locked row. */
  get busy(): boolean {
    return this.waiting.length > 0 || this.flushing !== undefined || this.later.size > 0;
  }

  /** Settles every result not yet sent (waiting, or waiting on a locked row) with `err` (shutdown). */
  abandon(err: Error): void {
    for (const [t, items] of this.later) {
      clearTimeout(t);
      for (const p of items) p.settle(err);
    }
    this.later.clear();
    for (const p of this.waiting.splice(0)) p.settle(err);
  }

  private async flush(): Promise<void> {
    while (this.waiting.length > 0) {
      const group = this.waiting.splice(0, MAX_GROUP);
      const db = this.db();
      if (!db) {
        for (const p of group) p.settle(new Error('worker stopped'));
        continue;
      }
      try {
        const { counted, busy } = await withRetries(
          () => completeJobs(db, this.workerId, group.map((p) => p.completion)),
          { attempts: 10 },
        );
        const locked = group.filter((p) => busy.has(p.completion.requestId));
        for (const p of group) if (!busy.has(p.completion.requestId)) p.settle(counted.has(p.completion.requestId));
        if (locked.length > 0) this.retryLater(locked);
      } catch (err) {
        if (isTransientError(err)) {
          for (const p of group) p.settle(err instanceof Error ? err : new Error(String(err)));
        } else {
          await this.storeEach(db, group);
        }
      }
    }
  }

  /** After a grouped statement failed on content: each result on its own, so only the bad row fails. */
  private async storeEach(db: Queryable, group: Pending[]): Promise<void> {
    for (const p of group) {
      try {
        const { counted, busy } = await withRetries(() => completeJobs(db, this.workerId, [p.completion]), { attempts: 10 });
        if (busy.size > 0) this.retryLater([p]);
        else p.settle(counted.has(p.completion.requestId));
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        p.settle(isTransientError(err) ? (err as Error) : new UnstorableResult(message, true));
      }
    }
  }

  private retryLater(items: Pending[]): void {
    const t = setTimeout(() => {
      this.later.delete(t);
      this.waiting.push(...items);
      this.flushing ??= this.flush().finally(() => (this.flushing = undefined));
    }, LOCKED_RETRY_MS);
    this.later.set(t, items);
  }
}
