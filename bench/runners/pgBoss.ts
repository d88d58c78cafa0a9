// BENCHMARK ONLY: a pg-boss 12 process working queue `noop` with a no-op handler.
// argv: <connectionString> <workers> <batchSize>. `workers` work() loops
// (localConcurrency), each fetching up to batchSize jobs per fetch. pg-boss at
// its best: LISTEN/NOTIFY wake-up (useListenNotify, the queue created with
// notify: true), continuous fetching while the queue holds a backlog
// (burstWhenReadyExceeds, from its ready count refreshed every second) and,
// with batchSize > 1, while batches come back full (burstWhenBatchFull).
// Polling (0.5 s, its minimum) is the fallback.
// Env: BENCH_FIRST_FILE, BENCH_REPORT_JOBS (see bench/noopEngine.ts).
import { writeFileSync } from 'node:fs';
import { PgBoss } from 'pg-boss';

const [connectionString, workers, batchSize] = process.argv.slice(2).map((v, i) => (i === 0 ? v : Number(v))) as [
  string,
  number,
  number,
];
const now = () => performance.timeOrigin + performance.now();
const firstFile = process.env.BENCH_FIRST_FILE;
const report = process.env.BENCH_REPORT_JOBS === '1' && typeof process.send === 'function';
let seen = false;

const boss = new PgBoss({
  connectionString,
  max: workers + 3,
  schedule: false,
  migrate: false,
  useListenNotify: true,
  // The queue's ready count, refreshed every second, drives burstWhenReadyExceeds below.
  supervise: true,
  superviseIntervalSeconds: 1,
  monitorIntervalSeconds: 1,
  queueCacheIntervalSeconds: 1,
});
boss.on('error', (e) => process.stderr.write(`pg-boss: ${e.message}\n`));
await boss.start();
await boss.work(
  'noop',
  {
    batchSize,
    localConcurrency: workers,
    pollingIntervalSeconds: 0.5,
    notifyPollingIntervalSeconds: 0.5,
    // Fetch continuously while there is a backlog, instead of once per poll.
    burstWhenReadyExceeds: 1,
    ...(batchSize > 1 ? { burstWhenBatchFull: true } : {}),
  },
  async (jobs) => {
    const start = now();
    if (!seen) {
      seen = true;
      if (firstFile) writeFileSync(firstFile, String(start));
    }
    if (report) for (const j of jobs) process.send!({ id: String((j.data as { id?: unknown })?.id), start, end: now() });
  },
);
process.send?.({ ready: true });
const stop = () => void boss.stop({ graceful: true, timeout: 5000 }).then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
