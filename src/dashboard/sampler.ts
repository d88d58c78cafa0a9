// Samples steadytext_queue_stats() every few seconds into a ring buffer: the
// queue-depth chart's history, and completions per function over time (the
// throughput column).
import type { QueueStatsRow } from './queries.ts';

export interface Sample {
  /** ms since epoch */
  t: number;
  pending: number;
  processing: number;
  /** completed rows per function_name at t */
  completed: Record<string, number>;
}

/** A fixed-size ring buffer, oldest first when read. */
export class RingBuffer<T> {
  private readonly items: T[] = [];
  private start = 0;
  constructor(readonly capacity: number) {}

  push(item: T): void {
    if (this.items.length < this.capacity) this.items.push(item);
    else {
      this.items[this.start] = item;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  toArray(): T[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }

  get length(): number {
    return this.items.length;
  }
}

export function sampleFrom(rows: QueueStatsRow[], t = Date.now()): Sample {
  const s: Sample = { t, pending: 0, processing: 0, completed: {} };
  for (const r of rows) {
    if (r.status === 'pending') s.pending += r.count;
    else if (r.status === 'processing') s.processing += r.count;
    else if (r.status === 'completed') s.completed[r.function_name] = r.count;
  }
  return s;
}

/**
 * Completions per minute by function over the last `windowMs` of samples
 * (at least two samples apart; deletions of old rows count as zero).
 */
export function throughputPerMinute(samples: Sample[], windowMs = 60_000): Record<string, number> {
  if (samples.length < 2) return {};
  const last = samples[samples.length - 1];
  const first = samples.find((s) => s.t >= last.t - windowMs) ?? samples[0];
  const span = last.t - first.t;
  if (span <= 0) return {};
  const out: Record<string, number> = {};
  for (const [fn, n] of Object.entries(last.completed)) {
    out[fn] = (Math.max(0, n - (first.completed[fn] ?? 0)) * 60_000) / span;
  }
  return out;
}
