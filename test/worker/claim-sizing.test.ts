// The claim policy (src/worker/claimPolicy.ts) alone: how many jobs the
// producer claims for a given buffer, measured job time and settings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClaimPolicy } from '../../src/worker/claimPolicy.ts';
import { AUTO_PREFETCH_MAX } from '../../src/worker/settings.ts';

const policy = (o: Partial<ConstructorParameters<typeof ClaimPolicy>[0]> = {}) =>
  new ClaimPolicy({ concurrency: 2, prefetch: null, batchEmbeddings: true, embedBatchSize: 32, ...o });

test('auto prefetch: the concurrency until a job was timed, then about 50 ms of work, within [concurrency, 256]', () => {
  const p = policy();
  assert.equal(p.ahead(), 2);
  p.observeJob(1); // 1 ms jobs: 2 slots · 50 ms / 1 ms
  assert.equal(p.ahead(), 100);
  const fast = policy();
  fast.observeJob(0.001);
  assert.equal(fast.ahead(), AUTO_PREFETCH_MAX);
  const slow = policy();
  slow.observeJob(5000);
  assert.equal(slow.ahead(), 2);
  assert.equal(policy({ prefetch: 0 }).ahead(), 0);
});

test('the buffer is refilled when down to half of what it holds ahead: the free slots plus that', () => {
  const p = policy({ prefetch: 10 });
  assert.deepEqual(p.want({ buffered: 0, bufferedEmbeds: 0, freeSlots: 2 }), { any: 12, embed: 32, startNow: 2 });
  assert.equal(p.want({ buffered: 5, bufferedEmbeds: 0, freeSlots: 0 }).any, 5);
  assert.equal(p.want({ buffered: 6, bufferedEmbeds: 0, freeSlots: 0 }).any, 0);
  // started_at is stamped by the claim only for jobs that go straight to a free slot
  assert.equal(p.want({ buffered: 5, bufferedEmbeds: 0, freeSlots: 0 }).startNow, 0);
});

test('an embed batch is topped up only while embed jobs are about', () => {
  const p = policy({ prefetch: 10 });
  const want = p.want({ buffered: 3, bufferedEmbeds: 3, freeSlots: 0 });
  assert.equal(want.embed, 29);
  assert.equal(p.topUpEmbeds(want), false, 'no embed job claimed yet');
  p.claimed([{ function_name: 'embed' }], 12, null);
  assert.equal(p.topUpEmbeds(want), true);
  p.claimed([{ function_name: 'embed' }], 29, 'embed'); // came back short
  assert.equal(p.topUpEmbeds(want), false);
  assert.equal(policy({ batchEmbeddings: false }).want({ buffered: 0, bufferedEmbeds: 0, freeSlots: 1 }).embed, 0);
  assert.equal(p.want({ buffered: 17, bufferedEmbeds: 17, freeSlots: 0 }).embed, 0, 'more than half a batch buffered');
});

test('jobs much shorter than a start mark are all stamped started by their claim', () => {
  const p = policy({ prefetch: 10 });
  p.observeJob(1);
  p.observeMark(5);
  assert.equal(p.stampAhead, true);
  assert.equal(p.want({ buffered: 0, bufferedEmbeds: 0, freeSlots: 2 }).startNow, 32);
  const q = policy();
  q.observeJob(100);
  q.observeMark(5);
  assert.equal(q.stampAhead, false);
});
