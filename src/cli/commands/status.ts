// `steadytext status`: the queue (steadytext_queue_stats()) and the workers
// (steadytext_worker_status()) as tables, or JSON; --watch refreshes in place.
// Where pipelines exist, their counts too (steadytext_pipeline_status();
// `steadytext pipelines` shows them in full).
import { Command } from 'commander';
import Table from 'cli-table3';
import pg from 'pg';
import { pipelineStatusIfAny, type PipelineStatusRow } from '../../db/pipelines/pipelineStatus.ts';
import { queueStats, type QueueStatsRow } from '../../db/queue/queueStats.ts';
import { unservedPending, type UnservedPending } from '../../db/queue/unservedPending.ts';
import { databaseUrlFrom } from '../databaseUrl.ts';
import { tableStyle, useColor } from '../color.ts';
import { failWith } from '../exit.ts';
import { pipelinesHeadline, pipelinesTable } from '../pipelineTable.ts';
import { printable, printableJson } from '../printable.ts';
import { watchLoop, watchSeconds } from '../watch.ts';

interface StatusOptions {
  databaseUrl?: string;
  watch?: string | true;
  json?: boolean;
}

export type { QueueStatsRow };

export interface WorkerStatusRow {
  worker_id: string;
  host: string | null;
  pid: number | null;
  started_at: string | null;
  last_heartbeat: string | null;
  jobs_completed: number;
  jobs_failed: number;
  current_jobs: number;
  status: string;
}

export interface StatusSnapshot {
  queue: QueueStatsRow[];
  workers: WorkerStatusRow[];
  /** Pending requests of job types no running worker takes (every live worker's engine refuses them). */
  unserved: UnservedPending[];
  /** steadytext_pipeline_status() rows; present only when the caller sees any pipeline. */
  pipelines?: PipelineStatusRow[];
}

export function statusCommand(): Command {
  return new Command('status')
    .description('show the queue (steadytext_queue_stats) and the workers (steadytext_worker_status)')
    .option('--database-url <url>', 'PostgreSQL connection URL (default: $DATABASE_URL)')
    .option('--watch [seconds]', 'refresh in place every N seconds (default 2) until Ctrl-C')
    .option('--json', 'print {"queue":[...],"workers":[...],"unserved":[...]}, plus "pipelines":[...] where any exist (with --watch: one line per refresh)')
    .action(async (opts: StatusOptions) => {
      const url = databaseUrlFrom(opts.databaseUrl);
      const every = watchSeconds(opts.watch);
      const client = new pg.Client({ connectionString: url });
      try {
        await client.connect();
      } catch (err) {
        failWith(err);
      }
      const render = async () => {
        let snap: StatusSnapshot;
        try {
          snap = await readStatus(client);
        } catch (err) {
          failWith(err);
        }
        return opts.json ? printableJson(snap) + '\n' : formatStatus(snap, useColor());
      };
      if (!every) {
        process.stdout.write(await render());
        await client.end();
        return;
      }
      await watchLoop(render, every, opts.json === true);
    });
}

export async function readStatus(db: pg.ClientBase | pg.Pool): Promise<StatusSnapshot> {
  const queue = await queueStats(db);
  const w = await db.query<WorkerStatusRow>(
    `SELECT worker_id, host, pid, to_json(started_at) #>> '{}' AS started_at,
            to_json(last_heartbeat) #>> '{}' AS last_heartbeat,
            jobs_completed::float8 AS jobs_completed, jobs_failed::float8 AS jobs_failed, current_jobs, status
     FROM steadytext_worker_status()`,
  );
  const snap: StatusSnapshot = { queue, workers: w.rows, unserved: await unservedPending(db) };
  const pipelines = await pipelineStatusIfAny(db);
  if (pipelines.length > 0) snap.pipelines = pipelines;
  return snap;
}

const seconds = (v: number | null) => (v === null ? '' : v < 10 ? v.toFixed(2) : v.toFixed(1));

function ago(iso: string | null): string {
  if (!iso) return '';
  const s = (Date.now() - Date.parse(iso)) / 1000;
  return s < 60 ? `${Math.max(0, s).toFixed(1)} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${(s / 3600).toFixed(1)} h ago`;
}

export function formatStatus(snap: StatusSnapshot, color = false): string {
  const style = tableStyle(color);
  const out: string[] = [];
  if (snap.queue.length === 0) {
    out.push('queue: empty');
  } else {
    const t = new Table({
      head: ['function', 'status', 'count', 'oldest pending (s)', 'avg processing (s)', 'p95 processing (s)'],
      colAligns: ['left', 'left', 'right', 'right', 'right', 'right'],
      style,
    });
    for (const r of snap.queue) {
      t.push([r.function_name, r.status, String(r.count), seconds(r.oldest_pending_age_seconds), seconds(r.avg_processing_seconds), seconds(r.p95_processing_seconds)]);
    }
    const total = snap.queue.reduce((n, r) => n + r.count, 0);
    out.push(`queue: ${total} request${total === 1 ? '' : 's'}`, t.toString());
  }
  out.push('');
  if (snap.workers.length === 0) {
    out.push('workers: none seen in the last hour (start one: steadytext worker)');
  } else {
    const t = new Table({
      head: ['worker', 'host', 'pid', 'status', 'running', 'completed', 'failed', 'last heartbeat'],
      colAligns: ['left', 'left', 'right', 'left', 'right', 'right', 'right', 'right'],
      style,
    });
    for (const w of snap.workers) {
      // worker_id and host are whatever a worker registered: printed escaped.
      t.push([printable(w.worker_id), printable(w.host ?? ''), w.pid === null ? '' : String(w.pid), w.status, String(w.current_jobs), String(w.jobs_completed), String(w.jobs_failed), ago(w.last_heartbeat)]);
    }
    const live = snap.workers.filter((w) => w.status === 'running').length;
    out.push(`workers: ${live} running of ${snap.workers.length} seen in the last hour`, t.toString());
  }
  for (const u of snap.unserved) {
    out.push(
      `not taken: ${u.pending} pending ${u.function_name} request${u.pending === 1 ? '' : 's'}: no running worker takes ${u.function_name} ` +
        `(each refuses it: its model is missing there, or its inference server cannot serve it; a worker's start log says which)`,
    );
  }
  if (snap.pipelines && snap.pipelines.length > 0) {
    out.push('', `${pipelinesHeadline(snap.pipelines)} (in full: steadytext pipelines)`, pipelinesTable(snap.pipelines, color, true));
  }
  return out.join('\n') + '\n';
}
