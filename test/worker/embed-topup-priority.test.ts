import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { events } from '../helpers/scriptedEngine.ts';
import { enqueue, gen, startTestWorker, waitFor } from './fixtures/queue.ts';

const embed = (text: string, priority: number) => ({
  function_name: 'embed',
  parameters: { text_input: text, use_cache: false },
  priority,
});

test('an embed top-up claim never takes embed jobs ahead of higher-priority jobs of another kind', async () => {
  const db = await createTestDatabase();
  // Claim order: embed (20), generate (15), generate (10), embed (0). The
  // first claim (concurrency 1 + 1 ahead) takes the first two; the embed one
  // starts and the worker would top up its next embed batch while it runs.
  // The top-up must not take the embed job of priority 0 while the generate
  // job of priority 10 waits in the queue: that one runs first. (Taken early,
  // embed 0 would sit in the buffer and run before generate 10 is claimed.)
  const ids = await enqueue(db.pool, [embed('sleep:500', 20), gen('x', { priority: 15 }), gen('g', { priority: 10 }), embed('late', 0)]);
  const before = events.length;
  const worker = await startTestWorker(db.url, { concurrency: 1, prefetch: '1', embedBatchSize: '8', heartbeatTimeout: '10' });
  try {
    const rows = await waitFor('all completed', async () => {
      const r = await db.pool.query(`SELECT request_id, retry_count FROM steadytext_queue WHERE status = 'completed'`);
      return r.rows.length === ids.length ? r.rows : null;
    });
    // The run order is the order of the engine's calls (one slot: one call at
    // a time). Not started_at: once jobs are short next to a markStarted round
    // trip (a loaded machine), the claim stamps started_at on every job it
    // takes (ClaimPolicy.stampAhead), so started_at may record when a job was
    // claimed, and a job claimed while another waits for its mark can carry
    // the earlier stamp although it runs later.
    assert.deepEqual(
      events.slice(before).map((e) => `${e.call} ${e.inputs.join()}`),
      ['embed sleep:500', 'generate x', 'generate g', 'embed late'],
      'run order: embed 20, generate 15, generate 10, embed 0',
    );
    assert.ok(rows.every((r) => r.retry_count === 0));
  } finally {
    await worker.stop();
    await db.drop();
  }
});
