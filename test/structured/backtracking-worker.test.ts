// No pattern can stop a worker: patterns built to make a backtracking regex
// engine take exponential time run on a live worker (tiny model) next to
// ordinary jobs. Every job completes, the regex results fully match (checked
// by PostgreSQL's own regex engine), and the worker's heartbeat never goes stale.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTestDatabase } from '../helpers/db.ts';
import { TINY_DIR } from '../engine/tinyEngine.ts';
import { startTestWorker, waitFor } from '../worker/fixtures/queue.ts';

const SHAPES = ['(a|a){255}b', '(a+)+$', '(a|aa)*c', '((a*)*)*b', '(x+x+)+y', '(\\w+\\s?)+$', '(.*a){12}'];

test('backtracking-shaped patterns complete beside other jobs; heartbeats stay fresh', async () => {
  process.env.STEADYTEXT_MODEL_DIR ??= TINY_DIR;
  const db = await createTestDatabase();
  const worker = await startTestWorker(db.url, { engineModule: '', models: 'tiny', threads: 1, heartbeatInterval: '0.25', heartbeatTimeout: '3' });
  let worst = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const r = await db.pool.query(
        `SELECT coalesce(max(extract(epoch FROM clock_timestamp() - last_heartbeat)), 0)::float8 AS age
         FROM steadytext_workers WHERE status = 'running'`,
      );
      worst = Math.max(worst, r.rows[0].age);
      await new Promise((res) => setTimeout(res, 50));
    }
  })();
  try {
    const ids: Array<{ id: string; pattern?: string }> = [];
    for (const [k, pattern] of SHAPES.entries()) {
      const r = await db.pool.query(
        `SELECT steadytext_generate_regex_async($1, $2, max_tokens := 300, seed := $3, use_cache := false) AS id`,
        [`Shape ${k}:`, pattern, k],
      );
      ids.push({ id: r.rows[0].id, pattern });
      const g = await db.pool.query(`SELECT steadytext_generate_async($1, max_tokens := 8, use_cache := false) AS id`, [`other tenant ${k}`]);
      ids.push({ id: g.rows[0].id });
    }
    await waitFor('every job finished', async () => {
      const r = await db.pool.query(
        `SELECT count(*)::int AS n FROM steadytext_queue WHERE request_id = ANY($1::uuid[]) AND status IN ('completed', 'failed')`,
        [ids.map((x) => x.id)],
      );
      return r.rows[0].n === ids.length;
    }, 120_000, 50);
    for (const { id, pattern } of ids) {
      const r = await db.pool.query(`SELECT status, result, error FROM steadytext_queue WHERE request_id = $1`, [id]);
      assert.equal(r.rows[0].status, 'completed', `${pattern ?? 'generate'}: ${r.rows[0].error}`);
      if (!pattern) continue;
      const text = typeof r.rows[0].result === 'string' ? r.rows[0].result : JSON.stringify(r.rows[0].result);
      const body = pattern.replace(/\$$/, '');
      const m = await db.pool.query(`SELECT $1::text ~ $2 AS ok`, [text, `^(?:${body})$`]);
      assert.ok(m.rows[0].ok, `${pattern}: ${text}`);
    }
  } finally {
    sampling = false;
    await sampler;
    await worker.stop();
    await db.drop();
  }
  // The worker beats every 0.25 s; a frozen event loop would let this grow.
  assert.ok(worst < 2, `oldest heartbeat seen while jobs ran: ${worst.toFixed(2)} s`);
});
