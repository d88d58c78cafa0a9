// The spec's SQL examples as a runnable suite, shared by spec-examples.test.ts
// (schema installed by migrate) and extension.test.ts (CREATE EXTENSION).
// Every ```sql block of the spec (SteadyText's "PostgreSQL Extension - Async
// Functions" documentation, async-functions.md; see SPEC below), run as
// written, in order, against a database holding the user tables the examples
// query. A stand-in worker completes jobs where an example reads results.
//
// Known exceptions, each handled explicitly below (search for EXCEPTION):
//  1. Signature-only blocks (`steadytext_x(arg TYPE DEFAULT ..) RETURNS ..`)
//     are declarations, not statements: pg_proc must hold exactly that
//     signature (argument names, types, defaults, return type).
//  2. `SELECT * FROM steadytext_check_async(request_id) FROM steadytext_queue`
//     is not SQL (two FROMs): it must fail with a syntax error; its
//     check_async_batch equivalent runs instead.
//  3. Two examples use columns with no FROM (`user_query`, and `prompt` /
//     `current_user_id`): they must fail with undefined_column as written, and
//     run with a FROM clause supplying those columns.
//  4. `cron.schedule(...)` needs pg_cron, which embedded PostgreSQL lacks.
//  5. `CREATE TABLE steadytext_dead_letter_queue` already exists (our schema
//     creates it): ours is dropped, the spec's DDL runs as written, and its
//     columns must be identical to ours.
//  7. PostgreSQL 15/16 only: ALTER SYSTEM SET of a custom parameter needs a
//     placeholder in the session (fixed in 17), so the test sets one first.
//  6. ALTER SYSTEM is run as written and checked in pg_file_settings, then
//     reset before the block's `SELECT pg_reload_conf()`, so that the shared
//     test server never runs with those settings (other test files run in
//     parallel against it).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';

/**
 * The upstream document this project implements is not part of the
 * repository. Its examples run wherever a copy is found: STEADYTEXT_SPEC, or
 * spec/async-functions.md in a directory beside the clone. Empty when there is
 * none (the tests that need it say how to provide it and skip).
 */
export function findSpec(): string {
  if (process.env.STEADYTEXT_SPEC) return path.resolve(process.env.STEADYTEXT_SPEC);
  const parent = path.resolve('..');
  let siblings: string[] = [];
  try {
    siblings = readdirSync(parent).sort();
  } catch {
    // an unreadable parent: no sibling copies
  }
  const found = siblings.map((d) => path.join(parent, d, 'spec', 'async-functions.md')).find((f) => existsSync(f));
  return found ?? '';
}

export const SPEC = findSpec();

export const SPEC_MISSING =
  'SteadyText\'s "PostgreSQL Extension - Async Functions" document (async-functions.md) is not here: ' +
  'set STEADYTEXT_SPEC to a copy of it (markdown) to run its examples (the project\'s own SQL examples, in README.md and docs/, run in test/docs/sql-blocks.test.ts)';

/** Splits SQL into statements, respecting quotes, dollar quotes and (nested) comments. */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let cur = '';
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i];
    const two = sql.slice(i, i + 2);
    if (two === '--') {
      const end = sql.indexOf('\n', i);
      const stop = end === -1 ? sql.length : end;
      cur += sql.slice(i, stop);
      i = stop;
    } else if (two === '/*') {
      let depth = 0;
      let j = i;
      do {
        if (sql.slice(j, j + 2) === '/*') { depth++; j += 2; }
        else if (sql.slice(j, j + 2) === '*/') { depth--; j += 2; }
        else j++;
      } while (depth > 0 && j < sql.length);
      cur += sql.slice(i, j);
      i = j;
    } else if (ch === "'" || ch === '"') {
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === ch && sql[j + 1] === ch) j += 2;
        else if (sql[j] === ch) break;
        else j++;
      }
      cur += sql.slice(i, j + 1);
      i = j + 1;
    } else if (ch === '$' && /^\$[A-Za-z_]*\$/.test(sql.slice(i))) {
      const tag = /^\$[A-Za-z_]*\$/.exec(sql.slice(i))![0];
      const end = sql.indexOf(tag, i + tag.length);
      const stop = end === -1 ? sql.length : end + tag.length;
      cur += sql.slice(i, stop);
      i = stop;
    } else if (ch === ';') {
      out.push(cur);
      cur = '';
      i++;
    } else {
      cur += ch;
      i++;
    }
  }
  out.push(cur);
  // keep statements that hold more than comments and whitespace
  return out
    .map((s) => s.trim())
    .filter((s) => s.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '').trim() !== '');
}

const stripComments = (s: string) => s.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '').trim();

const norm = (s: string) =>
  s.toLowerCase()
    .replace(/timestamp without time zone/g, 'timestamp')
    .replace(/::text\b/g, '')
    .replace(/\s+/g, ' ')
    .replace(/\(\s+/g, '(')
    .replace(/\s+\)/g, ')')
    .replace(/\s*,\s*/g, ', ')
    .trim();

const FIXTURES = `
CREATE TABLE articles (id serial PRIMARY KEY, title text, content text, needs_summary boolean DEFAULT true,
                       date_published date DEFAULT current_date, published_date date DEFAULT current_date, summary text);
INSERT INTO articles (title, content) VALUES ('Indexes', 'B-trees keep keys sorted.'), ('MVCC', 'Rows have versions.');
CREATE TABLE documents (id serial PRIMARY KEY, doc_id integer, content text, embedding text, doc_type text,
                        processed boolean DEFAULT false, needs_embedding boolean DEFAULT true);
INSERT INTO documents (doc_id, content, doc_type) VALUES
  (123, 'PostgreSQL indexing makes search fast', 'urgent'),
  (124, 'Databases store rows in pages', 'normal');
CREATE TABLE embedding_queue (doc_id integer, request_id uuid, processed boolean DEFAULT false);
CREATE TABLE processing_queue (doc_id integer, request_id uuid, created_at timestamptz);
CREATE TABLE reviews (review_id serial PRIMARY KEY, review_text text, sentiment text);
INSERT INTO reviews (review_text) VALUES ('Loved it'), ('Broke after a day');
CREATE TABLE batch_results (request_id uuid, article_id integer);
CREATE TABLE products (id serial PRIMARY KEY, description text, category text);
INSERT INTO products (description, category) VALUES ('A phone', 'electronics'), ('A laptop', 'electronics'), ('A chair', 'furniture');
CREATE TABLE user_searches (id integer PRIMARY KEY, user_query text);
INSERT INTO user_searches VALUES (12345, 'postgresql indexing');
CREATE TABLE search_jobs (search_id integer, rerank_request_id uuid);
CREATE TABLE users (id integer PRIMARY KEY, tier text);
INSERT INTO users VALUES (1, 'premium'), (2, 'standard');
CREATE TABLE pipeline_stages (doc_id integer, stage text, request_id uuid);
CREATE TABLE summary_jobs (article_id integer, request_id uuid);
-- the request ids the spec's examples name
INSERT INTO steadytext_queue (request_id, function_name, parameters, status, result, started_at)
VALUES ('550e8400-e29b-41d4-a716-446655440000', 'generate', '{"prompt": "x"}', 'completed', 'spec result', now()),
       ('550e8400-e29b-41d4-a716-446655440001', 'generate', '{"prompt": "y"}', 'failed', NULL, now());
`;

/** The stand-in worker: completes every pending job. */
async function workerCompletesEverything(c: pg.ClientBase): Promise<void> {
  await c.query(`
    UPDATE steadytext_queue SET status = 'completed', started_at = now(), worker_id = 'spec-worker',
           result = CASE function_name WHEN 'embed' THEN '[0.6,0.8]' ELSE 'simulated result' END
    WHERE status IN ('pending', 'processing')`);
}

async function expectError(c: pg.ClientBase, sql: string, code: string): Promise<void> {
  let err: (Error & { code?: string }) | undefined;
  try {
    await c.query(sql);
  } catch (e) {
    err = e as Error & { code?: string };
  }
  assert.ok(err, `expected ${code} from: ${sql}`);
  assert.equal(err.code, code, err.message);
}

async function deadLetterColumns(c: pg.ClientBase) {
  const r = await c.query(`
    SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
           pg_get_expr(d.adbin, d.adrelid) AS dflt
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = 'steadytext_dead_letter_queue'::regclass AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum`);
  return r.rows;
}

async function verifySignature(c: pg.ClientBase, block: string): Promise<void> {
  const flat = block.replace(/\s+/g, ' ').trim();
  const m = /^(steadytext_\w+)\((.*?)\) RETURNS (.*)$/i.exec(flat);
  assert.ok(m, `signature block: ${flat}`);
  const [, name, args, result] = m;
  // steadytext_check_async_batch also has a text[] overload (for the spec's
  // ARRAY['550e8400-...'] example); the spec's own signature must exist exactly.
  const r = await c.query(
    `SELECT pg_get_function_arguments(p.oid) AS args, pg_get_function_result(p.oid) AS result
     FROM pg_proc p WHERE p.proname = $1 AND p.pronamespace = 'public'::regnamespace
     AND (p.proname <> 'steadytext_check_async_batch' OR p.proargtypes[0] = 'uuid[]'::regtype)`,
    [name],
  );
  assert.equal(r.rows.length, 1, `exactly one ${name}`);
  assert.equal(norm(r.rows[0].args), norm(args), `${name} arguments`);
  assert.equal(norm(r.rows[0].result), norm(result), `${name} result`);
}

/**
 * Runs every sql block of the spec on `c` (a database holding the installed
 * schema and nothing else), asserting what the examples did. Throws on the
 * first failure. opts.alterSystem: false skips the ALTER SYSTEM block (it
 * edits the server-wide postgresql.auto.conf: only one test file at a time
 * may do that, so only spec-examples.test.ts does).
 */
async function serverVersionNum(c: pg.ClientBase): Promise<number> {
  const r = await c.query(`SELECT current_setting('server_version_num')::int AS v`);
  return r.rows[0].v as number;
}

export async function runSpecExamples(
  c: pg.ClientBase,
  log: (line: string) => void = () => {},
  opts: { alterSystem?: boolean } = {},
): Promise<void> {
  const md = readFileSync(SPEC, 'utf8');
  const blocks = [...md.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(blocks.length >= 30, `found ${blocks.length} sql blocks`);
  await c.query(FIXTURES);

  let signatures = 0;
  let statements = 0;
  const ran: string[] = [];
  for (const block of blocks) {
    // EXCEPTION 1: declarations
    if (/^\s*steadytext_\w+\(/.test(block)) {
      await verifySignature(c, block);
      signatures++;
      continue;
    }
    if (block.includes('steadytext_get_async_result(request_id, timeout_seconds := 60)')) {
      await workerCompletesEverything(c); // its results must exist
    }
    for (const stmt of splitStatements(block)) {
      statements++;
      const bare = stripComments(stmt);
      // EXCEPTION 2: not SQL as written
      if (/steadytext_check_async\(request_id\)\s*FROM steadytext_queue/.test(bare)) {
        await expectError(c, stmt, '42601');
        await c.query(`
          SELECT * FROM steadytext_check_async_batch(ARRAY(
              SELECT request_id FROM steadytext_queue
              WHERE status = 'processing' AND started_at < NOW() - INTERVAL '5 minutes'))`);
        continue;
      }
      // EXCEPTION 3: unbound columns as written
      if (/^SELECT steadytext_embed_async\(\s*user_query,/.test(bare) && !/\bFROM\b/.test(bare)) {
        await expectError(c, stmt, '42703');
        const r = await c.query(`${stmt} FROM user_searches`);
        assert.equal(r.rows.length, 1);
        continue;
      }
      if (/^SELECT steadytext_generate_async\(\s*prompt,\s*priority := get_user_priority\(current_user_id\)/.test(bare)) {
        await expectError(c, stmt, '42703');
        const r = await c.query(`${stmt} FROM (VALUES ('Hello', 1)) AS t(prompt, current_user_id)`);
        const id = Object.values(r.rows[0])[0];
        const p = await c.query(`SELECT priority FROM steadytext_queue WHERE request_id = $1`, [id]);
        assert.equal(p.rows[0].priority, 10, 'premium user priority');
        continue;
      }
      // EXCEPTION 4: pg_cron
      if (/\bcron\.schedule\(/.test(bare)) {
        log('skipped (needs pg_cron, absent from embedded PostgreSQL): ' + stmt.replace(/\s+/g, ' '));
        continue;
      }
      // EXCEPTION 5: the dead letter table exists already
      if (/^CREATE TABLE steadytext_dead_letter_queue/.test(bare)) {
        const ours = await deadLetterColumns(c);
        // under CREATE EXTENSION the table is a member: detach it before dropping
        const member = await c.query(
          `SELECT 1 FROM pg_depend WHERE classid = 'pg_class'::regclass
             AND objid = 'steadytext_dead_letter_queue'::regclass AND deptype = 'e'`);
        if (member.rows.length > 0) await c.query(`ALTER EXTENSION pg_steadytext DROP TABLE steadytext_dead_letter_queue`);
        await c.query(`DROP TABLE steadytext_dead_letter_queue`);
        await c.query(stmt);
        assert.deepEqual(await deadLetterColumns(c), ours, 'the spec DDL and ours give the same columns');
        continue;
      }
      if (opts.alterSystem === false && /^(ALTER SYSTEM|SELECT pg_reload_conf\(\))/.test(bare)) {
        log('skipped here (server-wide, run by spec-examples.test.ts): ' + bare.replace(/\s+/g, ' '));
        continue;
      }
      // EXCEPTION 7: before PostgreSQL 17, ALTER SYSTEM refuses a custom
      // parameter unless this session already holds a placeholder for it
      // ("unrecognized configuration parameter"); a session SET makes one.
      const alter = /^ALTER SYSTEM SET (steadytext\.\w+)/.exec(bare);
      if (alter && (await serverVersionNum(c)) < 170000) {
        log(`PostgreSQL < 17: SET ${alter[1]} first, so ALTER SYSTEM knows the placeholder`);
        await c.query(`SELECT set_config($1, '', false)`, [alter[1]]);
      }
      // EXCEPTION 6: ALTER SYSTEM written but never loaded
      if (/^SELECT pg_reload_conf\(\)/.test(bare)) {
        const f = await c.query(
          `SELECT name, setting FROM pg_file_settings WHERE name LIKE 'steadytext.%' AND applied IS NOT NULL ORDER BY name`);
        assert.deepEqual(f.rows, [
          { name: 'steadytext.max_queue_size', setting: '10000' },
          { name: 'steadytext.worker_concurrency', setting: '4' },
          { name: 'steadytext.worker_poll_interval', setting: '1s' },
        ]);
        for (const g of ['worker_concurrency', 'worker_poll_interval', 'max_queue_size']) {
          await c.query(`ALTER SYSTEM RESET steadytext.${g}`);
        }
      }
      try {
        await c.query(stmt);
      } catch (err) {
        throw new Error(`spec example failed: ${(err as Error).message}\n${stmt}`);
      }
      ran.push(stmt);
    }
  }
  log(`${signatures} signature blocks verified, ${statements} statements, ${ran.length} run as written`);
  assert.equal(signatures, 12);

  // What the examples did, as a user would check it
  const q = async (sql: string) => (await c.query(sql)).rows;
  assert.equal((await q(`SELECT count(*)::int AS n FROM embedding_queue`))[0].n, 2);
  assert.equal((await q(`SELECT count(*)::int AS n FROM processing_queue`))[0].n, 2);
  assert.deepEqual(
    await q(`SELECT p.doc_id, q.priority FROM processing_queue p JOIN steadytext_queue q USING (request_id) ORDER BY doc_id`),
    [{ doc_id: 123, priority: 5 }, { doc_id: 124, priority: 0 }],
  );
  // the example pairs unnest(request_ids) with generate_series in FROM: n x n rows for n articles
  assert.equal((await q(`SELECT count(*)::int AS n FROM batch_results`))[0].n, 4);
  assert.equal((await q(`SELECT count(DISTINCT request_id)::int AS n FROM batch_results`))[0].n, 2);
  const rr = await q(`SELECT q.function_name, q.priority, q.parameters->'documents' AS docs
                      FROM search_jobs s JOIN steadytext_queue q ON q.request_id = s.rerank_request_id`);
  assert.deepEqual(rr, [{ function_name: 'rerank', priority: 5, docs: ['PostgreSQL indexing makes search fast'] }]);
  assert.deepEqual(
    await q(`SELECT steadytext_get_async_result(request_id, timeout_seconds := 60) AS r FROM processing_queue WHERE doc_id = 123`),
    [{ r: 'simulated result' }],
  );
  // the spec's own functions work against our surface
  assert.deepEqual(await q(`SELECT * FROM check_queue_health()`), [{ alert_level: 'OK', message: 'Queue healthy' }]);
  await c.query(`SELECT queue_daily_summaries()`);
  assert.equal((await q(`SELECT count(*)::int AS n FROM summary_jobs`))[0].n, 2);
  await c.query(`UPDATE steadytext_queue SET retry_count = 3 WHERE request_id = '550e8400-e29b-41d4-a716-446655440001'`);
  await c.query(`SELECT process_dead_letters()`);
  assert.deepEqual(
    await q(`SELECT request_id, failure_reason FROM steadytext_dead_letter_queue`),
    [{ request_id: '550e8400-e29b-41d4-a716-446655440001', failure_reason: 'Max retries exceeded' }],
  );
}
