import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RingBuffer, sampleFrom, throughputPerMinute } from '../../src/dashboard/sampler.ts';

test('RingBuffer keeps the newest `capacity` items, oldest first', () => {
  const r = new RingBuffer<number>(3);
  assert.deepEqual(r.toArray(), []);
  for (let i = 1; i <= 5; i++) r.push(i);
  assert.deepEqual(r.toArray(), [3, 4, 5]);
  assert.equal(r.length, 3);
});

test('samples sum pending/processing; throughput is completions per minute over the window', () => {
  const row = (function_name: string, status: string, count: number) => ({
    function_name, status, count, oldest_pending_age_seconds: null, avg_processing_seconds: null, p95_processing_seconds: null,
  });
  const a = sampleFrom([row('generate', 'pending', 2), row('embed', 'pending', 1), row('generate', 'completed', 10)], 0);
  assert.deepEqual([a.pending, a.processing, a.completed], [3, 0, { generate: 10 }]);
  const b = sampleFrom([row('generate', 'processing', 1), row('generate', 'completed', 40), row('embed', 'completed', 5)], 30_000);
  assert.deepEqual(throughputPerMinute([a, b]), { generate: 60, embed: 10 });
  assert.deepEqual(throughputPerMinute([a]), {});
  // Rows deleted since (completed count fell): no negative throughput.
  const c = sampleFrom([row('generate', 'completed', 5)], 60_000);
  assert.equal(throughputPerMinute([b, c]).generate, 0);
});
