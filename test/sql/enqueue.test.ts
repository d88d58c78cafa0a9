import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { listen, queueCount } from './helpers.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db.drop();
});

async function row(id: string) {
  const r = await db.pool.query(`SELECT * FROM steadytext_queue WHERE request_id = $1`, [id]);
  assert.equal(r.rows.length, 1);
  return r.rows[0];
}

test('generate_async with positional defaults stores every argument, pending, priority 0', async () => {
  const r = await db.pool.query(`SELECT steadytext_generate_async('Write a poem about databases') AS id`);
  const q = await row(r.rows[0].id);
  assert.equal(q.function_name, 'generate');
  assert.equal(q.status, 'pending');
  assert.equal(q.priority, 0);
  assert.deepEqual(q.parameters, { prompt: 'Write a poem about databases', max_tokens: 512, use_cache: true, seed: 42 });
  assert.equal(q.model_id, 'default-generation');
  assert.match(q.cache_key, /^[0-9a-f]{64}$/);
  assert.equal(q.completed_at, null);
});

test('generate_async named notation as in the spec', async () => {
  const r = await db.pool.query(`SELECT steadytext_generate_async(
      prompt := 'Explain PostgreSQL indexing', max_tokens := 1024, seed := 123, priority := 1) AS id`);
  const q = await row(r.rows[0].id);
  assert.equal(q.priority, 1);
  assert.deepEqual(q.parameters, { prompt: 'Explain PostgreSQL indexing', max_tokens: 1024, use_cache: true, seed: 123 });
});

test('embed_async, generate_json/regex/choice_async and rerank_async store their arguments', async () => {
  const e = await row((await db.pool.query(`SELECT steadytext_embed_async('hello', use_cache := false, priority := 10) AS id`)).rows[0].id);
  assert.equal(e.function_name, 'embed');
  assert.equal(e.priority, 10);
  assert.equal(e.model_id, 'default-embedding');
  assert.deepEqual(e.parameters, { text_input: 'hello', use_cache: false });

  const schema = { type: 'object', properties: { entities: { type: 'array' } } };
  const j = await row((await db.pool.query(`SELECT steadytext_generate_json_async('Extract', $1::jsonb, priority := 5) AS id`, [schema])).rows[0].id);
  assert.equal(j.function_name, 'generate_json');
  assert.deepEqual(j.parameters, { prompt: 'Extract', schema, max_tokens: 512, use_cache: true, seed: 42 });

  const x = await row((await db.pool.query(`SELECT steadytext_generate_regex_async(prompt := 'Phone', pattern := '\\d{3}-\\d{4}', max_tokens := 20) AS id`)).rows[0].id);
  assert.equal(x.function_name, 'generate_regex');
  assert.deepEqual(x.parameters, { prompt: 'Phone', pattern: '\\d{3}-\\d{4}', max_tokens: 20, use_cache: true, seed: 42 });

  const c = await row((await db.pool.query(`SELECT steadytext_generate_choice_async('Sentiment: great', ARRAY['positive','negative','neutral'], priority := 1) AS id`)).rows[0].id);
  assert.equal(c.function_name, 'generate_choice');
  assert.deepEqual(c.parameters.choices, ['positive', 'negative', 'neutral']);

  const k = await row((await db.pool.query(`SELECT steadytext_rerank_async('q', ARRAY['a','', 'b']) AS id`)).rows[0].id);
  assert.equal(k.function_name, 'rerank');
  assert.equal(k.model_id, 'default-reranking');
  assert.deepEqual(k.parameters, {
    query: 'q', documents: ['a', '', 'b'],
    task: 'Given a web search query, retrieve relevant passages that answer the query',
    use_cache: true, seed: 42,
  });
});

test('model ids published by workers in steadytext_config feed the cache key', async () => {
  const before = await row((await db.pool.query(`SELECT steadytext_generate_async('same') AS id`)).rows[0].id);
  await db.pool.query(`INSERT INTO steadytext_config (key, value) VALUES ('model.generation', '"qwen-test"')`);
  try {
    const afterRow = await row((await db.pool.query(`SELECT steadytext_generate_async('same') AS id`)).rows[0].id);
    assert.equal(afterRow.model_id, 'qwen-test');
    assert.notEqual(afterRow.cache_key, before.cache_key);
    const k = await db.pool.query(`SELECT steadytext_cache_key('generate', 'qwen-test', $1) AS k`, [afterRow.parameters]);
    assert.equal(afterRow.cache_key, k.rows[0].k);
  } finally {
    await db.pool.query(`DELETE FROM steadytext_config WHERE key = 'model.generation'`);
  }
});

test('enqueue notifies steadytext_new_job at commit, not before', async () => {
  const l = await listen(await db.connect(), 'steadytext_new_job');
  const c = await db.connect();
  await c.query('BEGIN');
  await c.query(`SELECT steadytext_generate_async('notify me')`);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(l.payloads.length, 0, 'no notification before commit');
  await c.query('COMMIT');
  assert.deepEqual(await l.waitFor(1), ['']);
});

test('a rolled back enqueue leaves no job', async () => {
  const n = await queueCount(db.pool);
  const c = await db.connect();
  await c.query('BEGIN');
  await c.query(`SELECT steadytext_generate_async('never')`);
  await c.query(`SELECT steadytext_generate_batch_async(ARRAY['a','b'])`);
  await c.query('ROLLBACK');
  assert.equal(await queueCount(db.pool), n);
});

test('with use_cache a cache hit is born completed, is counted on the cache row once folded, and skips the worker', async () => {
  const id0 = (await db.pool.query(`SELECT steadytext_generate_async('cached prompt', max_tokens := 64) AS id`)).rows[0].id;
  const q0 = await row(id0);
  // the worker writes the result under the row's cache_key
  await db.pool.query(
    `INSERT INTO steadytext_cache (cache_key, function_name, model_id, parameters, result)
     VALUES ($1, 'generate', $2, $3, 'cached text')`,
    [q0.cache_key, q0.model_id, q0.parameters],
  );
  const l = await listen(await db.connect(), 'steadytext_completed');
  const id = (await db.pool.query(`SELECT steadytext_generate_async('cached prompt', max_tokens := 64, priority := 3) AS id`)).rows[0].id;
  const q = await row(id);
  assert.equal(q.status, 'completed');
  assert.equal(q.result, 'cached text');
  assert.ok(q.started_at && q.completed_at);
  assert.equal(q.started_at.getTime(), q.completed_at.getTime());
  // the hit is appended (no lock on the entry) and counted in by the fold the workers' eviction runs
  const before = await db.pool.query(`SELECT access_count FROM steadytext_cache WHERE cache_key = $1`, [q0.cache_key]);
  assert.equal(Number(before.rows[0].access_count), 1);
  await db.pool.query(`SELECT _steadytext_cache_fold()`);
  const c = await db.pool.query(`SELECT access_count FROM steadytext_cache WHERE cache_key = $1`, [q0.cache_key]);
  assert.equal(Number(c.rows[0].access_count), 2);
  assert.deepEqual((await l.waitFor(1)).map((p) => JSON.parse(p)), [{ request_id: id, function: 'generate', status: 'completed' }]);
  // use_cache := false ignores the cache; a different seed is a different key
  assert.equal((await row((await db.pool.query(`SELECT steadytext_generate_async('cached prompt', max_tokens := 64, use_cache := false) AS id`)).rows[0].id)).status, 'pending');
  assert.equal((await row((await db.pool.query(`SELECT steadytext_generate_async('cached prompt', max_tokens := 64, seed := 7) AS id`)).rows[0].id)).status, 'pending');
});

test('priority order is the claim order (priority DESC, created_at)', async () => {
  const c = await db.connect();
  await c.query(`UPDATE steadytext_queue SET status = 'cancelled' WHERE status = 'pending'`);
  const ids: Record<string, string> = {};
  for (const [name, prio] of [['low', 0], ['high', 10], ['mid', 5], ['high2', 10], ['neg', -3]] as const) {
    ids[name] = (await c.query(`SELECT steadytext_generate_async($1, priority := $2) AS id`, [name, prio])).rows[0].id;
  }
  const r = await c.query(
    `SELECT parameters->>'prompt' AS p FROM steadytext_queue WHERE status = 'pending'
     ORDER BY priority DESC, created_at, request_id`,
  );
  assert.deepEqual(r.rows.map((x) => x.p), ['high', 'high2', 'mid', 'low', 'neg']);
  // the claim index serves that order
  const plan = await c.query(
    `EXPLAIN (COSTS OFF) SELECT request_id FROM steadytext_queue WHERE status = 'pending'
     ORDER BY priority DESC, created_at, request_id LIMIT 1`,
  );
  assert.match(plan.rows.map((x) => x['QUERY PLAN']).join('\n'), /steadytext_queue_claim_idx/);
});

test('generate_batch_async returns ids in prompt order, one batch_id, batch_index, claim order = prompt order', async () => {
  await db.pool.query(`UPDATE steadytext_queue SET status = 'cancelled' WHERE status = 'pending'`);
  const prompts = Array.from({ length: 50 }, (_, i) => `p${i}`);
  const r = await db.pool.query(`SELECT steadytext_generate_batch_async($1::text[], max_tokens := 150, priority := 3) AS ids`, [prompts]);
  const ids: string[] = r.rows[0].ids;
  assert.equal(ids.length, 50);
  const rows = await db.pool.query(
    `SELECT u.id, q.parameters, q.batch_id, q.batch_index, q.priority, q.status
     FROM unnest($1::uuid[]) WITH ORDINALITY u(id, ord) JOIN steadytext_queue q ON q.request_id = u.id ORDER BY u.ord`,
    [ids],
  );
  assert.deepEqual(rows.rows.map((x) => x.parameters.prompt), prompts);
  assert.deepEqual(rows.rows.map((x) => x.batch_index), prompts.map((_, i) => i));
  assert.equal(new Set(rows.rows.map((x) => x.batch_id)).size, 1);
  assert.ok(rows.rows[0].batch_id);
  assert.ok(rows.rows.every((x) => x.priority === 3 && x.status === 'pending' && x.parameters.max_tokens === 150));
  const claimOrder = await db.pool.query(
    `SELECT request_id FROM steadytext_queue WHERE status = 'pending' ORDER BY priority DESC, created_at, request_id`,
  );
  assert.deepEqual(claimOrder.rows.map((x) => x.request_id), ids);
  assert.deepEqual((await db.pool.query(`SELECT steadytext_generate_batch_async('{}') AS ids`)).rows[0].ids, []);
});

test('embed_batch_async: text_input per item, cache hits born completed, 10,000 items in one call', async () => {
  const first = (await db.pool.query(`SELECT steadytext_embed_batch_async(ARRAY['x','y']) AS ids`)).rows[0].ids;
  const qx = await row(first[0]);
  assert.deepEqual(qx.parameters, { text_input: 'x', use_cache: true });
  await db.pool.query(
    `INSERT INTO steadytext_cache (cache_key, function_name, model_id, parameters, result)
     VALUES ($1, 'embed', $2, $3, '[1,0]')`,
    [qx.cache_key, qx.model_id, qx.parameters],
  );
  const second = (await db.pool.query(`SELECT steadytext_embed_batch_async(ARRAY['x','z','x'], priority := 2) AS ids`)).rows[0].ids;
  const st = await db.pool.query(
    `SELECT q.status, q.result FROM unnest($1::uuid[]) WITH ORDINALITY u(id, ord) JOIN steadytext_queue q ON q.request_id = u.id ORDER BY u.ord`,
    [second],
  );
  assert.deepEqual(st.rows, [
    { status: 'completed', result: '[1,0]' },
    { status: 'pending', result: null },
    { status: 'completed', result: '[1,0]' },
  ]);
  await db.pool.query(`SELECT _steadytext_cache_fold()`);
  const ac = await db.pool.query(`SELECT access_count FROM steadytext_cache WHERE cache_key = $1`, [qx.cache_key]);
  assert.equal(Number(ac.rows[0].access_count), 3);

  const texts = Array.from({ length: 10000 }, (_, i) => `text number ${i}`);
  const t0 = Date.now();
  const big = (await db.pool.query(`SELECT steadytext_embed_batch_async($1::text[]) AS ids`, [texts])).rows[0].ids;
  const ms = Date.now() - t0;
  assert.equal(big.length, 10000);
  assert.ok(ms < 10000, `10k items took ${ms} ms`);
  const last = await row(big[9999]);
  assert.equal(last.parameters.text_input, 'text number 9999');
  assert.equal(last.batch_index, 9999);
});

test('a batch item gets the very cache key a single enqueue of it gets, under either cache scope', async () => {
  const items = ['kéy one', 'key "two"', 'key one', 'ключ'];
  try {
    for (const scope of ['shared', 'role']) {
      await db.pool.query(`INSERT INTO steadytext_config (key, value) VALUES ('cache_scope', to_jsonb($1::text))
                           ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [scope]);
      const gen = (await db.pool.query(`SELECT steadytext_generate_batch_async($1::text[], max_tokens := 77, seed := 9, use_cache := false) AS ids`, [items])).rows[0].ids;
      const emb = (await db.pool.query(`SELECT steadytext_embed_batch_async($1::text[]) AS ids`, [items])).rows[0].ids;
      for (const [i, item] of items.entries()) {
        const g1 = (await db.pool.query(`SELECT steadytext_generate_async($1, max_tokens := 77, seed := 9, use_cache := false) AS id`, [item])).rows[0].id;
        const e1 = (await db.pool.query(`SELECT steadytext_embed_async($1) AS id`, [item])).rows[0].id;
        assert.equal((await row(gen[i])).cache_key, (await row(g1)).cache_key, `${scope}: generate ${item}`);
        assert.equal((await row(emb[i])).cache_key, (await row(e1)).cache_key, `${scope}: embed ${item}`);
        if (scope === 'shared') {
          const q = await row(gen[i]);
          const k = await db.pool.query(`SELECT steadytext_cache_key($1, $2, $3) AS k`, [q.function_name, q.model_id, q.parameters]);
          assert.equal(q.cache_key, k.rows[0].k, `steadytext_cache_key of ${item}`);
        }
      }
      assert.notEqual((await row(gen[0])).cache_key, (await row(gen[2])).cache_key, 'different prompts, different keys');
    }
  } finally {
    await db.pool.query(`DELETE FROM steadytext_config WHERE key = 'cache_scope'`);
  }
});
