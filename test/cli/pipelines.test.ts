// `steadytext pipelines`: the pipelines of steadytext_pipeline_status() as a
// table and JSON, one with its failed rows, and pause / resume / retry /
// rerun changing what the status says; `steadytext status`'s pipelines
// section. A real pipeline over a small table; rows are settled by a stand-in
// worker through the worker's SQL (test/helpers/pipelines.ts), no engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.ts';
import { createDocumentsPipeline, pipelineWhen, settleRows } from '../helpers/pipelines.ts';
import { waitFor } from '../worker/fixtures/queue.ts';
import { runCli, startCli } from './fixtures/cli.ts';

const ignoreDropError = () => {};

/** The columns of steadytext_pipeline_status(), in order (docs/pipelines.md). */
const STATUS_COLUMNS = [
  'name', 'source', 'input', 'destination', 'function_name', 'model_id', 'priority', 'paused', 'rows', 'done', 'pending',
  'processing', 'failed', 'stale', 'coverage', 'lag_seconds', 'throughput', 'backfilling', 'models', 'last_error', 'created_at',
];

/** The table row of pipeline `name` in `steadytext pipelines`' output, as its cells. */
function cells(stdout: string, name: string): string[] | undefined {
  const line = stdout.split('\n').find((l) => l.startsWith(`│ ${name} `));
  return line?.split('│').slice(1, -1).map((c) => c.trim());
}

test('pipelines: the table and --json follow the rows; one pipeline shows its failed rows; retry sends them back', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const env = { DATABASE_URL: db.url };
  try {
    const none = await runCli(['pipelines'], env);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /^pipelines: none \(create one with SELECT steadytext_pipeline_create/m);
    assert.deepEqual(JSON.parse((await runCli(['pipelines', '--json'], env)).stdout), { pipelines: [] });

    const name = await createDocumentsPipeline(db.pool, { rows: 4 });
    await pipelineWhen(db.pool, name, '4 rows pending', (p) => p.rows === 4 && p.pending === 4);

    const pending = await runCli(['pipelines'], env);
    assert.equal(pending.code, 0, pending.stderr);
    assert.match(pending.stdout, /^pipelines: 1 \(1 backfilling\)$/m, 'no worker has scanned the table yet');
    assert.deepEqual(
      pending.stdout.split('\n').find((l) => l.startsWith('│ pipeline'))?.split('│').slice(1, -1).map((c) => c.trim()),
      ['pipeline', 'rows', 'done', 'pending', 'failed', 'stale', 'coverage', 'lag', 'throughput', 'model', 'paused', 'last error'],
    );
    const [, rows, done, pend, failed, stale, coverage, lag, throughput, model, paused, lastError] = cells(pending.stdout, name) ?? [];
    assert.deepEqual([rows, done, pend, failed, stale, coverage, paused, lastError], ['4', '0', '4', '0', '0', '0.0 %', 'no', '']);
    assert.match(lag, /^\d+\.\d+ s$/, 'lag: the oldest pending change');
    assert.equal(throughput, '0/s');
    assert.ok(model.length > 0, 'the model the values should come from');
    assert.ok(!/\x1b\[/.test(pending.stdout), 'no colour codes when stdout is not a terminal');

    // Two rows done, one refused by the engine: coverage, failed, throughput.
    assert.deepEqual(await settleRows(db.pool, name, { done: 2, failed: 1, error: 'engine refused: \u001b[2Jtoo long' }), { written: 2, failed: 1 });
    await pipelineWhen(db.pool, name, '2 done, 1 failed', (p) => p.done === 2 && p.failed === 1 && p.pending === 1);
    const settled = await runCli(['pipelines'], env);
    assert.match(settled.stdout, /^pipelines: 1 \(1 backfilling, 1 failed row\)$/m, 'one row the scan has not reached yet');
    const after = cells(settled.stdout, name) ?? [];
    assert.deepEqual([after[1], after[2], after[3], after[4], after[6]], ['4', '2', '1', '1', '50.0 %']);
    assert.match(after[8], /^\d+\.\d+\/s$/, 'rows written in the last minute');

    const j = await runCli(['pipelines', '--json'], env);
    assert.equal(j.code, 0, j.stderr);
    const { pipelines } = JSON.parse(j.stdout);
    assert.equal(pipelines.length, 1);
    const p = pipelines[0];
    assert.deepEqual(Object.keys(p), STATUS_COLUMNS);
    assert.equal(p.name, name);
    assert.match(p.source, /documents$/);
    assert.equal(p.input, 'body');
    assert.match(p.destination, /documents\.embedding$/);
    assert.equal(p.function_name, 'embed');
    assert.deepEqual([p.rows, p.done, p.pending, p.processing, p.failed, p.stale, p.coverage], [4, 2, 1, 0, 1, 0, 50]);
    assert.equal(p.paused, false);
    assert.equal(typeof p.lag_seconds, 'number');
    assert.ok(p.throughput > 0);
    assert.deepEqual(p.models, { [p.model_id]: 2 });
    assert.ok(!Number.isNaN(Date.parse(p.created_at)));

    // One pipeline: its settings, counts and failed rows, the error escaped.
    const one = await runCli(['pipelines', name], env);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, new RegExp(`^pipeline ${name}$`, 'm'));
    assert.match(one.stdout, /^ {2}input +body$/m);
    assert.match(one.stdout, /^ {2}done +2 \(50\.0 %\)$/m);
    assert.match(one.stdout, /^ {2}state +backfilling$/m, "one row the scan has not reached yet");
    assert.match(one.stdout, new RegExp(`^failed rows: 1; \`steadytext pipelines retry ${name}\``, 'm'));
    assert.ok(one.stdout.includes('engine refused: \\x1b[2Jtoo long'), one.stdout);
    assert.doesNotMatch(one.stdout, /\x1b/);
    const oneJson = JSON.parse((await runCli(['pipelines', 'show', name, '--json'], env)).stdout);
    assert.equal(oneJson.pipeline.name, name);
    assert.equal(oneJson.failures.length, 1);
    assert.deepEqual(Object.keys(oneJson.failures[0]), ['pipeline', 'row_key', 'error', 'attempts', 'failed_at']);
    assert.equal(oneJson.failures[0].error, 'engine refused: \u001b[2Jtoo long');
    assert.ok(Array.isArray(oneJson.failures[0].row_key));
    assert.equal((await runCli(['pipelines', name, '--limit', '0'], env)).code, 0);

    // Retry: the failed row goes back to pending.
    const retried = await runCli(['pipelines', 'retry', name], env);
    assert.equal(retried.code, 0, retried.stderr);
    assert.equal(retried.stdout, `${name}: 1 failed row back to pending\n`);
    await pipelineWhen(db.pool, name, 'no failed row', (s) => s.failed === 0 && s.pending === 2);
    assert.deepEqual(JSON.parse((await runCli(['pipelines', 'retry', name, '--json'], env)).stdout), { pipeline: name, retried: 0 });
    assert.match((await runCli(['pipelines', name], env)).stdout, /^failed rows: none$/m);
  } finally {
    await db.drop();
  }
});

test('pipelines pause / resume / rerun change what status says; status has a pipelines section', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const env = { DATABASE_URL: db.url };
  try {
    const name = await createDocumentsPipeline(db.pool, { rows: 3 });
    await pipelineWhen(db.pool, name, '3 rows pending', (p) => p.rows === 3 && p.pending === 3);

    // --watch: one JSON line per refresh, the pause seen in a later one.
    const watching = startCli(['pipelines', '--watch', '0.2', '--json'], env);
    await waitFor('a first refresh', async () => watching.stdout().includes('\n'), 10_000);
    const paused = await runCli(['pipelines', 'pause', name], env);
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, new RegExp(`^${name}: paused \\(changes are still recorded`));
    await pipelineWhen(db.pool, name, 'paused', (p) => p.paused);
    await waitFor('a refresh showing the pause', async () => watching.stdout().includes('"paused":true'), 10_000);
    watching.kill('SIGINT');
    const watched = await watching.result;
    assert.equal(watched.code, 0, watched.stderr);
    const frames = watched.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.equal(frames[0].pipelines[0].paused, false);
    assert.equal(frames.at(-1).pipelines[0].paused, true);
    assert.equal(cells((await runCli(['pipelines'], env)).stdout, name)?.[10], 'yes');
    assert.match((await runCli(['pipelines', name], env)).stdout, /^ {2}state +paused$/m);

    const status = await runCli(['status'], env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^pipelines: 1 \(1 paused\) \(in full: steadytext pipelines\)$/m);
    const row = cells(status.stdout, name) ?? [];
    assert.deepEqual([row[1], row[2], row[3], row[6], row[8]], ['3', '0', '3', '0.0 %', 'yes'], status.stdout);
    const snap = JSON.parse((await runCli(['status', '--json'], env)).stdout);
    assert.deepEqual(Object.keys(snap), ['queue', 'workers', 'unserved', 'pipelines']);
    assert.equal(snap.pipelines[0].name, name);
    assert.equal(snap.pipelines[0].paused, true);

    // Options before the subcommand are the parent's, and count too.
    const resumed = await runCli(['pipelines', '--json', 'resume', name], env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(JSON.parse(resumed.stdout), { pipeline: name, paused: false });
    await pipelineWhen(db.pool, name, 'running', (p) => !p.paused);
    assert.equal(cells((await runCli(['pipelines'], env)).stdout, name)?.[10], 'no');

    // Rerun: every row is recomputed, the done ones too.
    await settleRows(db.pool, name, { done: 3 });
    await pipelineWhen(db.pool, name, 'all done', (p) => p.done === 3 && p.coverage === 100);
    assert.equal(cells((await runCli(['pipelines'], env)).stdout, name)?.[6], '100.0 %');
    const rerun = await runCli(['pipelines', 'rerun', name, '--database-url', db.url], {});
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stdout, new RegExp(`^${name}: every row will be recomputed in the background`));
    await pipelineWhen(db.pool, name, 'rows to recompute', (p) => p.done < 3 && p.pending + p.processing + p.stale > 0);
  } finally {
    await db.drop();
  }
});

test('pipelines: an unknown name exits 1, bad usage 2, an unreachable database 3; names are printed escaped; a schema without pipelines says to migrate', async () => {
  const db = await createTestDatabase();
  db.pool.on('error', ignoreDropError);
  const env = { DATABASE_URL: db.url };
  try {
    const unknown = await runCli(['pipelines', 'nope'], env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^steadytext: steadytext_pipeline_status: pipeline 'nope' does not exist \(SQLSTATE 42704\)/, 'the SQL function\'s own message');
    const pause = await runCli(['pipelines', 'pause', 'nope'], env);
    assert.equal(pause.code, 1, pause.stdout);
    assert.match(pause.stderr, /^steadytext: .*nope.*\(SQLSTATE \w{5}\)/, 'the SQL function\'s own message');
    assert.equal((await runCli(['pipelines', 'pause'], env)).code, 2, 'missing name');
    assert.equal((await runCli(['pipelines', '--bogus'], env)).code, 2);
    assert.equal((await runCli(['pipelines', 'x', '--limit', 'many'], env)).code, 2);
    assert.equal((await runCli(['pipelines', '--limit', '5'], env)).code, 2, '--limit needs a name');
    assert.equal((await runCli(['pipelines', 'x', '--watch'], env)).code, 2, '--watch is for the list');
    assert.equal((await runCli(['pipelines', '--watch', 'soon'], env)).code, 2);
    assert.equal((await runCli(['pipelines'], { DATABASE_URL: 'postgres://127.0.0.1:1/none' })).code, 3);
    assert.equal((await runCli(['pipelines', 'retry', 'x'], { DATABASE_URL: 'postgres://127.0.0.1:1/none' })).code, 3);

    // A name is whatever its creator wrote: printed escaped, exact in JSON.
    const nasty = 'docs\u001b]0;pwned\u0007\u001b[2J\u202e';
    await createDocumentsPipeline(db.pool, { name: nasty, table: 'notes', rows: 1 });
    const listed = await runCli(['pipelines'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.doesNotMatch(listed.stdout, /[\u001b\u0007\u202e]/);
    assert.ok(listed.stdout.includes('│ docs\\x1b]0;pwned\\x07\\x1b[2J\\u202e │'), listed.stdout);
    const shown = await runCli(['pipelines', nasty], env);
    assert.equal(shown.code, 0, shown.stderr);
    assert.doesNotMatch(shown.stdout, /[\u001b\u0007\u202e]/);
    const asJson = await runCli(['pipelines', '--json'], env);
    assert.doesNotMatch(asJson.stdout, /[\u001b\u0007\u202e]/);
    assert.equal(JSON.parse(asJson.stdout).pipelines[0].name, nasty);
    const paused = await runCli(['pipelines', 'pause', nasty], env);
    assert.equal(paused.code, 0, paused.stderr);
    assert.doesNotMatch(paused.stdout, /[\u001b\u0007\u202e]/);

    // A database whose pg_steadytext predates pipelines (1.4.0): status goes on without them.
    await db.pool.query(`DROP FUNCTION IF EXISTS steadytext_pipeline_status(text)`);
    const status = await runCli(['status', '--json'], env);
    assert.equal(status.code, 0, status.stderr);
    assert.deepEqual(Object.keys(JSON.parse(status.stdout)), ['queue', 'workers', 'unserved']);
    const old = await runCli(['pipelines'], env);
    assert.equal(old.code, 1);
    assert.match(old.stderr, /has no pipelines \(they came with schema 1\.5\.0\): run `steadytext migrate`/);
  } finally {
    await db.drop();
  }
});
