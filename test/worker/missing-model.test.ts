// A model that is not on the worker's host is not a transient error: the
// worker does not claim the job types it cannot run (they wait for a worker
// that has the model), says so at the default log level, and a job whose
// model goes missing after the start fails at once instead of after retries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureTinyModel } from '../../src/engine/tinyModels.ts';
import { ModelNotFoundError, type Engine } from '../../src/engine/types.ts';
import { createScriptedEngine } from '../helpers/scriptedEngine.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { runCli, startCli } from '../cli/fixtures/cli.ts';
import { enqueue, gen, row, startTestWorker, waitFor } from './fixtures/queue.ts';

const ignoreDropError = () => {};

test('steadytext worker without the generation model: says why at start, leaves generate jobs pending, still serves embeddings', { timeout: 180_000 }, async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const modelDir = mkdtempSync(path.join(os.tmpdir(), 'steadytext-missing-'));
  // The default set with an embedding model at hand (a small GGUF by path) and no generation model.
  const embeddingFile = ensureTinyModel('embedding', modelDir);
  const worker = startCli(['worker', '--database-url', db.url, '--models', 'default', '--worker-id', 'no-generation', '--threads', '1'], {
    STEADYTEXT_ENGINE_MODULE: '',
    STEADYTEXT_MODEL_DIR: modelDir,
    STEADYTEXT_EMBEDDING_MODEL: embeddingFile,
    STEADYTEXT_GENERATION_MODEL: '',
    STEADYTEXT_WORKER_LOG_LEVEL: '',
    STEADYTEXT_ALLOW_DOWNLOAD: '',
  }, 170_000);
  try {
    await waitFor('the worker started', async () => /started \(/.test(worker.stdout()), 120_000);
    const [generate] = await enqueue(db.pool, [gen('a poem')]);
    const [embed] = await enqueue(db.pool, [{ function_name: 'embed', parameters: { text_input: 'after the poem', use_cache: false } }]);
    // The embed job, enqueued after the generate job, completes: the worker went past the generate job.
    await waitFor('the embed job completed', async () => (await row(db.pool, embed)).status === 'completed', 120_000);
    const untouched = await row(db.pool, generate);
    assert.equal(untouched.status, 'pending');
    assert.equal(untouched.attempt, 0, 'never claimed');
    assert.equal(untouched.error, null);
    worker.kill('SIGTERM');
    const r = await worker.result;
    assert.match(
      r.stderr,
      new RegExp(
        'will not take generate, generate_json, generate_regex, generate_choice jobs \\(they stay pending for a worker that serves them\\): ' +
          `the generation model Qwen3-0\\.6B-Q8_0\\.gguf is not in ${modelDir} \\(run \`steadytext models pull\`, then restart the worker\\)`,
      ),
      'said at the default log level',
    );
    assert.doesNotMatch(r.stderr, /will not take embed/);
  } finally {
    worker.kill('SIGKILL');
    await worker.result;
    await db.drop();
    rmSync(modelDir, { recursive: true, force: true });
  }
});

test('steadytext status and the synchronous functions say that nobody takes the jobs of a missing model', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const engine = {
    ...createScriptedEngine(),
    refusals: () => [{ function: 'rerank', reason: 'the reranking model qwen3-reranker-0.6b-q8_0.gguf is not in /models' }],
  } as Engine;
  const worker = await startTestWorker(db.url, { workerId: 'no-reranker' }, { engine });
  try {
    await db.pool.query(`SELECT steadytext_rerank_async('q', ARRAY['a', 'b'], use_cache := false)`);
    const status = await runCli(['status'], { DATABASE_URL: db.url });
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^not taken: 1 pending rerank request: no running worker takes rerank \(each refuses it: its model is missing there/m);
    await db.pool.query('CREATE EXTENSION IF NOT EXISTS dblink');
    await assert.rejects(
      db.pool.query(`SELECT * FROM steadytext_rerank('q', ARRAY['a', 'b'], use_cache := false)`),
      (err: { code?: string; message: string }) => err.code === '55000' && /none of the 1 running steadytext workers takes rerank jobs/.test(err.message),
      'fails at once instead of waiting out its timeout',
    );
  } finally {
    await worker.stop();
    await db.drop();
  }
});

test('a job whose model went missing fails at once, not after retries, and the failure is logged at the default level', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const lines: string[] = [];
  const message = 'generation model Qwen3-0.6B-Q8_0.gguf is not available at /models/Qwen3-0.6B-Q8_0.gguf: run `steadytext models pull`';
  const engine = {
    ...createScriptedEngine(),
    generate: async () => {
      throw new ModelNotFoundError(message);
    },
  } as Engine;
  const worker = await startTestWorker(db.url, { logLevel: 'info', maxRetries: '3' }, { engine, log: (l) => lines.push(l) });
  try {
    const [id] = await enqueue(db.pool, [gen('a poem')]);
    const failed = await waitFor('the job failed', async () => {
      const r = await row(db.pool, id);
      return r.status === 'failed' ? r : null;
    });
    assert.equal(failed.retry_count, 0, 'no retry: another attempt would fail the same way');
    assert.equal(failed.attempt, 1);
    assert.equal(failed.error, message);
    await waitFor('the failure logged', async () => lines.some((l) => l.includes(`job ${id} (generate) failed: ${message}`)));
  } finally {
    await worker.stop();
    await db.drop();
  }
});
