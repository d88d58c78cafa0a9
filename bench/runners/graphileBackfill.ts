// BENCHMARK ONLY: graphile-worker doing the backfill scenario's user work
// (bench/scenarios/backfill.ts) in its best documented configuration: batch
// jobs (a job whose payload is an array, one element per source row, here
// `{id}`; https://worker.graphile.org/docs/tasks "batch jobs") run by a
// worker in its batched mode (localQueue: jobs fetched and locked 500 at a
// time; completeJobBatchDelay/failJobBatchDelay 0: completions grouped as
// they come; https://worker.graphile.org/docs/performance#batching).
// The task reads the rows' content, asks the no-op engine for their vectors
// (bench/noopEngine.ts, BENCH_EMBED_DIMENSIONS: the very vector the
// pg-steadytext worker gets) and writes them into the rows with one
// `UPDATE ... FROM unnest(...)`, as a user's task would.
// argv: <connectionString> <concurrency>. Sends {ready: true} once running.
import { Logger, run } from 'graphile-worker';
import noopEngine from '../noopEngine.ts';
import { arrayLiteral } from '../lib/vectors.ts';

const [connectionString, concurrency] = process.argv.slice(2);
const engine = await noopEngine();

const runner = await run({
  connectionString,
  concurrency: Number(concurrency),
  noHandleSignals: true,
  pollInterval: 1000,
  logger: new Logger(() => () => {}),
  preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  taskList: {
    embed_rows: async (payload, helpers) => {
      const ids = (payload as { id: number }[]).map((p) => p.id);
      await helpers.withPgClient(async (db) => {
        const rows = (await db.query<{ id: string; content: string }>('SELECT id, content FROM documents WHERE id = ANY($1::bigint[])', [ids])).rows;
        const vectors = await engine.embed(rows.map((r) => r.content));
        await db.query(
          'UPDATE documents AS d SET embedding = u.v::real[] FROM unnest($1::bigint[], $2::text[]) AS u(id, v) WHERE d.id = u.id',
          [rows.map((r) => r.id), vectors.map(arrayLiteral)],
        );
      });
    },
  },
});
process.send?.({ ready: true });
const stop = () => void runner.stop().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
await runner.promise;
