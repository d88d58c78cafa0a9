// `steadytext pipelines`: the pipelines (steadytext_pipeline_status()) as a
// table or JSON; `steadytext pipelines <name>` one of them with its failed
// rows (steadytext_pipeline_failures(name)); `pause`, `resume`, `retry` and
// `rerun` call the SQL function of that name. Everything goes through the
// public SQL functions (docs/pipelines.md), so a role sees and changes only
// what the SQL lets it.
import { Command } from 'commander';
import pg from 'pg';
import { pausePipeline, resumePipeline, retryPipeline, rerunPipeline } from '../../db/pipelines/pipelineControl.ts';
import { pipelineFailures } from '../../db/pipelines/pipelineFailures.ts';
import { isNoPipelinesError, pipelineStatus } from '../../db/pipelines/pipelineStatus.ts';
import { useColor } from '../color.ts';
import { databaseUrlFrom } from '../databaseUrl.ts';
import { exitCodes, fail, failWith } from '../exit.ts';
import { pipelineDetail, pipelinesHeadline, pipelinesTable } from '../pipelineTable.ts';
import { printable, printableJson } from '../printable.ts';
import { watchLoop, watchSeconds } from '../watch.ts';

interface PipelinesOptions {
  databaseUrl?: string;
  json?: boolean;
  limit?: string;
  watch?: string | true;
}

const DATABASE_URL_HELP = 'PostgreSQL connection URL (default: $DATABASE_URL)';

/** A connection to the database the options name; exits 3 when it cannot be reached. */
async function connect(opts: PipelinesOptions): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrlFrom(opts.databaseUrl) });
  try {
    await client.connect();
  } catch (err) {
    failWith(err);
  }
  return client;
}

/** `work`'s answer; an SQL error prints PostgreSQL's message and exits 1 (a schema without pipelines says to migrate). */
async function sql<T>(work: () => Promise<T>, context?: string): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (isNoPipelinesError(err)) {
      fail("this database's pg_steadytext has no pipelines (they came with schema 1.5.0): run `steadytext migrate`", exitCodes.failure);
    }
    failWith(err, context && !/^steadytext_/.test((err as Error).message) ? context : undefined);
  }
}

/** Connects, runs `work`, ends the connection. */
async function withClient<T>(opts: PipelinesOptions, work: (db: pg.Client) => Promise<T>, context?: string): Promise<T> {
  const client = await connect(opts);
  try {
    return await sql(() => work(client), context);
  } finally {
    await client.end().catch(() => {});
  }
}

function limitFrom(value: string | undefined): number | null {
  if (value === undefined) return 20;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) fail(`--limit takes a whole number >= 0 (0: all), got ${value}`, exitCodes.usage);
  return n === 0 ? null : n;
}

async function list(opts: PipelinesOptions): Promise<void> {
  const every = watchSeconds(opts.watch);
  const client = await connect(opts);
  const render = async () => {
    const rows = await sql(() => pipelineStatus(client));
    if (opts.json) return printableJson({ pipelines: rows }) + '\n';
    if (rows.length === 0) return 'pipelines: none (create one with SELECT steadytext_pipeline_create(...), docs/pipelines.md)\n';
    return `${pipelinesHeadline(rows)}\n${pipelinesTable(rows, useColor())}\n`;
  };
  if (!every) {
    process.stdout.write(await render());
    await client.end().catch(() => {});
    return;
  }
  await watchLoop(render, every, opts.json === true);
}

async function show(name: string, opts: PipelinesOptions): Promise<void> {
  const limit = limitFrom(opts.limit);
  const { rows, failures } = await withClient(opts, async (db) => {
    const found = await pipelineStatus(db, name);
    return { rows: found, failures: found.length > 0 ? await pipelineFailures(db, name, limit) : [] };
  });
  if (rows.length === 0) {
    fail(`no pipeline named ${JSON.stringify(name)} (among those this role may see): \`steadytext pipelines\` lists them`, exitCodes.failure);
  }
  if (opts.json) process.stdout.write(printableJson({ pipeline: rows[0], failures }) + '\n');
  else process.stdout.write(pipelineDetail(rows[0], failures, useColor()));
}

/** A control subcommand: `steadytext pipelines <verb> <name>`. */
function control(
  verb: string,
  description: string,
  act: (db: pg.Client, name: string) => Promise<{ json: Record<string, unknown>; text: string }>,
): Command {
  return new Command(verb)
    .description(description)
    .argument('<name>', 'the pipeline')
    .option('--database-url <url>', DATABASE_URL_HELP)
    .option('--json', 'print the outcome as JSON')
    .action(async (name: string, _opts: PipelinesOptions, cmd: Command) => {
      // Options given before the verb (`steadytext pipelines --json pause x`) are the parent's.
      const opts = cmd.optsWithGlobals<PipelinesOptions>();
      const done = await withClient(opts, (db) => act(db, name), `steadytext_pipeline_${verb}`);
      process.stdout.write(opts.json ? printableJson({ pipeline: name, ...done.json }) + '\n' : `${printable(name)}: ${done.text}\n`);
    });
}

export function pipelinesCommand(): Command {
  const cmd = new Command('pipelines')
    .description('show the pipelines (steadytext_pipeline_status), one with its failed rows; pause, resume, retry, rerun')
    .argument('[name]', 'show this pipeline: its settings, counts and failed rows')
    .option('--database-url <url>', DATABASE_URL_HELP)
    .option('--json', 'print {"pipelines":[...]} (with a name: {"pipeline":{...},"failures":[...]})')
    .option('--limit <n>', 'with a name: the failed rows shown, most recent first (default 20; 0: all)')
    .option('--watch [seconds]', 'the list: refresh in place every N seconds (default 2) until Ctrl-C')
    // Options after a subcommand's name are that subcommand's (it reads the parent's too).
    .enablePositionalOptions()
    .addHelpText(
      'after',
      `
Examples:
  steadytext pipelines                       every pipeline, as a table
  steadytext pipelines doc_embeddings        one pipeline and its failed rows
  steadytext pipelines pause doc_embeddings
  steadytext pipelines retry doc_embeddings
  steadytext pipelines show pause            a pipeline named like a subcommand

Exit codes: 0 ok, 1 an SQL error or no such pipeline, 2 bad usage, 3 database unreachable (see docs/cli.md).`,
    )
    .action(async (name: string | undefined, opts: PipelinesOptions) => {
      if (name === undefined) {
        if (opts.limit !== undefined) fail('--limit applies to one pipeline: steadytext pipelines <name> --limit <n>', exitCodes.usage);
        await list(opts);
      } else {
        if (opts.watch !== undefined) fail('--watch applies to the list: steadytext pipelines --watch', exitCodes.usage);
        await show(name, opts);
      }
    });

  cmd.addCommand(
    new Command('show')
      .description('show one pipeline: its settings, counts and failed rows (as `steadytext pipelines <name>`)')
      .argument('<name>', 'the pipeline')
      .option('--database-url <url>', DATABASE_URL_HELP)
      .option('--json', 'print {"pipeline":{...},"failures":[...]}')
      .option('--limit <n>', 'the failed rows shown, most recent first (default 20; 0: all)')
      .action((name: string, _opts: PipelinesOptions, sub: Command) => show(name, sub.optsWithGlobals<PipelinesOptions>())),
  );
  cmd.addCommand(
    control('pause', 'steadytext_pipeline_pause(name): changes are still recorded, nothing is computed until resume', async (db, name) => {
      await pausePipeline(db, name);
      return { json: { paused: true }, text: `paused (changes are still recorded; nothing is computed until \`steadytext pipelines resume ${printable(name)}\`)` };
    }),
  );
  cmd.addCommand(
    control('resume', 'steadytext_pipeline_resume(name): compute again what changed meanwhile', async (db, name) => {
      await resumePipeline(db, name);
      return { json: { paused: false }, text: 'resumed' };
    }),
  );
  cmd.addCommand(
    control('retry', 'steadytext_pipeline_retry(name): failed rows back to pending; prints how many', async (db, name) => {
      const n = await retryPipeline(db, name);
      return { json: { retried: n }, text: `${n} failed row${n === 1 ? '' : 's'} back to pending` };
    }),
  );
  cmd.addCommand(
    control('rerun', 'steadytext_pipeline_rerun(name): recompute every row in the background', async (db, name) => {
      await rerunPipeline(db, name);
      return { json: { rerun: true }, text: 'every row will be recomputed in the background (the current values stay readable until then)' };
    }),
  );
  return cmd;
}
