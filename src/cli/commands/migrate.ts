// `steadytext migrate`: installs or upgrades the schema from sql/ on any
// database (managed servers where extension files cannot be copied), with
// dblink and the request-response hand-off as `steadytext up` sets them up.
import { Command } from 'commander';
import pg from 'pg';
import { currentVersion, migrate } from '../../db/schema/migrate.ts';
import { installDblink } from '../../db/schema/installDblink.ts';
import { setupHandoff } from '../../db/schema/setupHandoff.ts';
import { databaseUrlFrom } from '../databaseUrl.ts';
import { exitCodes, fail } from '../exit.ts';
import { printable, printableJson } from '../printable.ts';

export function migrateCommand(): Command {
  return new Command('migrate')
    .description('install or upgrade the pg_steadytext schema in a database (idempotent)')
    .option('--database-url <url>', 'PostgreSQL connection URL (default: $DATABASE_URL)')
    .option('--schema <name>', 'schema to install into', 'public')
    .option('--dry-run', 'print the SQL that would run, change nothing')
    .option('--json', 'print the outcome as JSON')
    .action(async (opts: { databaseUrl?: string; schema: string; dryRun?: boolean; json?: boolean }) => {
      const url = databaseUrlFrom(opts.databaseUrl);
      const client = new pg.Client({ connectionString: url });
      try {
        await client.connect();
      } catch (err) {
        fail(`cannot connect to ${redact(url)}: ${(err as Error).message}`, exitCodes.connection);
      }
      try {
        const result = await migrate(client, {
          schema: opts.schema,
          dryRun: opts.dryRun,
          log: opts.dryRun && !opts.json ? (sql) => process.stdout.write(sql + '\n') : undefined,
        });
        // What `up` sets up too: dblink (where the server has it and this role
        // may), then the request-response hand-off's own login (least
        // privilege, a connection limit), where this role may create it.
        const dblink = opts.dryRun ? undefined : await installDblink(client);
        if (dblink?.note && !opts.json) process.stderr.write(`note: ${printable(dblink.note)}\n`);
        const handoff = opts.dryRun ? undefined : await setupHandoff(client, opts.schema);
        if (handoff?.note && !opts.json) process.stderr.write(`note: ${printable(handoff.note)}\n`);
        if (opts.json) {
          process.stdout.write(
            printableJson({ ...result, dryRun: Boolean(opts.dryRun), dblink: dblink?.version ?? null, handoffLogin: handoff?.login ?? null }) + '\n',
          );
        } else if (result.applied.length === 0) {
          process.stdout.write(`pg_steadytext ${currentVersion()} is already installed in schema ${opts.schema}; nothing to do\n`);
        } else if (!opts.dryRun) {
          process.stdout.write(
            `pg_steadytext ${result.from ?? '(none)'} -> ${result.to}: applied ${result.applied.join(', ')}\n`,
          );
        }
      } catch (err) {
        fail(`migrate failed: ${(err as Error).message}`, exitCodes.failure);
      } finally {
        await client.end();
      }
    });
}

export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
