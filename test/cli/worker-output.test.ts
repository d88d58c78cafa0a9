// `steadytext worker` says that it started, where its metrics are, and that
// it stopped, each once, on stdout (the worker's log on stderr does not say
// it again), at the default log level.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { SCRIPTED_ENGINE, waitFor } from '../worker/fixtures/queue.ts';
import { startCli } from './fixtures/cli.ts';

test('worker: the started, metrics and stopped lines print once each, on stdout', async () => {
  const db = await createTestDatabase();
  try {
    const cli = startCli(['worker', '--worker-id', 'once', '--metrics-port', '0', '--engine-module', SCRIPTED_ENGINE], { DATABASE_URL: db.url });
    await waitFor('the started line', async () => / started \(/.test(cli.stdout()), 30_000);
    cli.kill('SIGTERM');
    const r = await cli.result;
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.deepEqual(lines.map((l) => l.replace(/\(.*\)|http:[^\s,]+/g, '…')), [
      'worker once metrics: …, health: …',
      'worker once started …',
      'worker once stopped …',
    ]);
    assert.match(lines[1], /^worker once started \(concurrency 1, prefetch auto, embed batch \d+, pipelines on \(batch \d+\), poll [\d.]+ s; models .+\)$/);
    assert.match(lines[2], /^worker once stopped \(0 completed, 0 failed, 0 released\)$/);
    assert.doesNotMatch(r.stderr, /started|stopped|metrics/, `stderr repeats nothing:\n${r.stderr}`);
  } finally {
    await db.drop();
  }
});
