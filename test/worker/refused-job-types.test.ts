import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineInputError, type Engine } from '../../src/engine/types.ts';
import { createScriptedEngine } from '../helpers/scriptedEngine.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { enqueue, gen, row, startTestWorker, waitFor } from './fixtures/queue.ts';
import { readStatus, formatStatus } from '../../src/cli/commands/status.ts';
import { FUNCTION_NAMES } from '../../src/interfaces.ts';

/**
 * An engine that, like the HTTP engine on an Ollama server, cannot constrain
 * generate_regex: it names the type in refusals() and throws if asked anyway.
 */
function regexRefusingEngine(): Engine {
  const reason = 'this server cannot constrain generate_regex';
  return {
    ...createScriptedEngine(),
    refusals: () => [{ function: 'generate_regex', reason }],
    generateRegex: async () => {
      throw new EngineInputError(`generate_regex: ${reason}`);
    },
  } as Engine;
}

test('a worker leaves the job types its engine refuses pending (untouched) for a worker that serves them', async () => {
  const db = await createTestDatabase();
  const lines: string[] = [];
  let serving: Awaited<ReturnType<typeof startTestWorker>> | undefined;
  // Enqueued first, so a worker claiming every type would take it first.
  const [regexId] = await enqueue(db.pool, [
    { function_name: 'generate_regex', parameters: { prompt: 'r', pattern: '[a-z]+', max_tokens: 64, seed: 42, use_cache: false } },
  ]);
  const others = await enqueue(db.pool, [
    gen('one'),
    { function_name: 'embed', parameters: { text_input: 'two', use_cache: false } },
    { function_name: 'generate_choice', parameters: { prompt: 'three', choices: ['a', 'b'], max_tokens: 8, seed: 42, use_cache: false } },
  ]);
  const refusing = await startTestWorker(
    db.url,
    { workerId: 'refusing', concurrency: 2, logLevel: 'info' },
    { engine: regexRefusingEngine(), log: (l) => lines.push(l) },
  );
  try {
    assert.ok(
      lines.some((l) => /will not take generate_regex jobs .*this server cannot constrain generate_regex/.test(l)),
      `start log names the refused type and why:\n${lines.join('\n')}`,
    );
    await waitFor('the served types completed', async () => {
      const r = await db.pool.query(`SELECT count(*)::int AS n FROM steadytext_queue WHERE request_id = ANY($1) AND status = 'completed'`, [
        others,
      ]);
      return r.rows[0].n === others.length;
    });
    const untouched = await row(db.pool, regexId);
    assert.equal(untouched.status, 'pending');
    // The worker row says what it takes; status says what nobody takes.
    const w = await db.pool.query(`SELECT served_functions FROM steadytext_workers WHERE worker_id = 'refusing'`);
    assert.deepEqual(w.rows[0].served_functions, FUNCTION_NAMES.filter((f) => f !== 'generate_regex'));
    const snap = await readStatus(db.pool);
    assert.deepEqual(snap.unserved, [{ function_name: 'generate_regex', pending: 1 }]);
    assert.match(formatStatus(snap), /not taken: 1 pending generate_regex request: no running worker takes generate_regex/);
    // A synchronous call of that type fails at once instead of waiting out its timeout.
    await db.pool.query('CREATE EXTENSION IF NOT EXISTS dblink');
    await assert.rejects(
      db.pool.query(`SELECT steadytext_generate_regex('r2', '[a-z]+', use_cache := false)`),
      (err: { code?: string; message: string }) =>
        err.code === '55000' && /none of the 1 running steadytext workers takes generate_regex jobs/.test(err.message),
    );
    assert.equal(untouched.attempt, 0, 'never claimed');
    assert.equal(untouched.retry_count, 0);
    assert.equal(untouched.error, null);
    assert.equal(untouched.worker_id, null);

    // A worker whose engine serves the type takes it.
    serving = await startTestWorker(db.url, { workerId: 'serving' });
    const done = await waitFor('completed by the serving worker', async () => {
      const r = await row(db.pool, regexId);
      return r.status === 'completed' ? r : null;
    });
    assert.equal(done.worker_id, 'serving');
    assert.equal(done.result, 'regex:[a-z]+:r');
    assert.equal(done.attempt, 1);
    assert.equal(done.retry_count, 0);
    assert.deepEqual((await readStatus(db.pool)).unserved, [], 'taken now');
    assert.equal((await db.pool.query(`SELECT served_functions FROM steadytext_workers WHERE worker_id = 'serving'`)).rows[0].served_functions, null);
  } finally {
    await refusing.stop();
    await serving?.stop();
    await db.drop();
  }
});
