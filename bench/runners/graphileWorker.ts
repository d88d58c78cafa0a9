// BENCHMARK ONLY: a graphile-worker process running a no-op task `noop`,
// the same role bench/noopEngine.ts plays for pg-steadytext workers.
// argv: <connectionString> <concurrency> [batched]. Env: BENCH_FIRST_FILE, BENCH_REPORT_JOBS (see noopEngine.ts).
// Default mode: one get_job and one complete_job per job (no localQueue, no batch delays).
// Batched mode (its headline figure): localQueue (jobs fetched and locked 500 at a time)
// and completeJobBatchDelay/failJobBatchDelay 0 (completions grouped as they come).
import { writeFileSync } from 'node:fs';
import { Logger, run } from 'graphile-worker';

const [connectionString, concurrency, mode] = process.argv.slice(2);
const batched = mode === 'batched';
const now = () => performance.timeOrigin + performance.now();
const firstFile = process.env.BENCH_FIRST_FILE;
const report = process.env.BENCH_REPORT_JOBS === '1' && typeof process.send === 'function';
let seen = false;

const runner = await run({
  connectionString,
  concurrency: Number(concurrency),
  noHandleSignals: true,
  pollInterval: 1000,
  logger: new Logger(() => () => {}),
  ...(batched ? { preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } } : {}),
  taskList: {
    noop: async (payload) => {
      const start = now();
      if (!seen) {
        seen = true;
        if (firstFile) writeFileSync(firstFile, String(start));
      }
      if (report) process.send!({ id: String((payload as { id?: unknown })?.id), start, end: now() });
    },
  },
});
process.send?.({ ready: true });
const stop = () => void runner.stop().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
await runner.promise;
