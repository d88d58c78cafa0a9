// `npm run test:stress`: tests with one busy process per core beside them, so
// a test that waits for a fixed time instead of for its condition fails here
// rather than on a loaded CI machine.
//
//   npm run test:stress               the rooms where tests wait on other
//                                     processes (worker, client, dashboard,
//                                     cli, and the SQL tests that run a worker)
//   npm run test:stress -- --all      the whole suite (as `npm test`)
//   npm run test:stress -- <files>    those files
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';

const STRESS_SET = [
  'test/worker/*.test.ts',
  'test/client/*.test.ts',
  'test/dashboard/*.test.ts',
  'test/cli/*.test.ts',
  'test/sql/bad-input.test.ts',
  'test/sql/request-response.test.ts',
  'test/docs/*.test.ts',
];

const args = process.argv.slice(2);
const files = args.includes('--all') ? args.filter((a) => a !== '--all') : args.length > 0 ? args : STRESS_SET;

const cores = availableParallelism();
const busy: ChildProcess[] = [];
for (let i = 0; i < cores; i++) {
  busy.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
}
const stopBusy = () => {
  for (const b of busy) if (b.exitCode === null && b.signalCode === null) b.kill('SIGKILL');
};
process.on('exit', stopBusy);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    stopBusy();
    process.exit(130);
  });
}
console.log(`test:stress: ${cores} busy process${cores === 1 ? '' : 'es'} (one per core) beside ${args.includes('--all') && files.length === 0 ? 'the whole suite' : files.join(' ')}`);

// The shell expands the globs, as it does for `npm test -- test/x/*.test.ts`.
const child = spawn(
  'bash',
  ['-c', `exec "${process.execPath}" --import tsx test/run.ts ${files.join(' ')}`],
  { stdio: 'inherit', env: process.env },
);
const code: number = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
stopBusy();
process.exit(code);
