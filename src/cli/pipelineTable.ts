// Pipelines as `steadytext pipelines` and `steadytext status` print them
// (rows of steadytext_pipeline_status(), docs/pipelines.md). Outside
// commands/ so that `status` shares it without loading the pipelines command.
// Everything a user or the database named (pipeline, model, error, row key)
// is printed escaped (printable.ts).
import Table from 'cli-table3';
import type { PipelineFailureRow } from '../db/pipelines/pipelineFailures.ts';
import type { PipelineStatusRow } from '../db/pipelines/pipelineStatus.ts';
import { tableStyle } from './color.ts';
import { printable } from './printable.ts';

const count = (n: number) => String(Math.round(n));

/** 0..100 as `87.5 %` (100 only when every row is done: 99.96 shows as 99.9). */
export function percent(coverage: number): string {
  const floored = Math.floor(coverage * 10 + 1e-9) / 10;
  return `${floored.toFixed(1)} %`;
}

/** A duration: `0.42 s`, `12.5 s`, `3.2 min`, `1.5 h`; empty for null (no pending change). */
export function duration(s: number | null): string {
  if (s === null) return '';
  if (s < 10) return `${Math.max(0, s).toFixed(2)} s`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** Rows per second: `12.5/s`, `0/s` when nothing was written in the last minute. */
export function rate(perSecond: number): string {
  return perSecond === 0 ? '0/s' : `${perSecond < 10 ? perSecond.toFixed(2) : perSecond.toFixed(1)}/s`;
}

/** At most `max` characters of `text` on one line, escaped. */
function clip(text: string | null, max: number): string {
  const t = printable(text ?? '');
  return t.length <= max ? t : `${t.slice(0, max - 1)}…`;
}

/** `paused`, `backfilling` (the scan over existing rows is still going) or `running`. */
export function stateOf(p: PipelineStatusRow): string {
  return p.paused ? 'paused' : p.backfilling ? 'backfilling' : 'running';
}

/** `pipelines: 2 (1 paused, 1 backfilling)`: the line above a table. */
export function pipelinesHeadline(rows: PipelineStatusRow[]): string {
  const by = new Map<string, number>();
  for (const p of rows) by.set(stateOf(p), (by.get(stateOf(p)) ?? 0) + 1);
  const notes = ['paused', 'backfilling'].filter((s) => by.has(s)).map((s) => `${by.get(s)} ${s}`);
  const failed = rows.reduce((n, p) => n + p.failed, 0);
  if (failed > 0) notes.push(`${count(failed)} failed row${failed === 1 ? '' : 's'}`);
  return `pipelines: ${rows.length}${notes.length ? ` (${notes.join(', ')})` : ''}`;
}

/**
 * The pipelines table. `compact` (for `steadytext status`): the counts,
 * coverage, lag and state only; in full (`steadytext pipelines`) also the
 * throughput, the model and the last error (its first 60 characters).
 */
export function pipelinesTable(rows: PipelineStatusRow[], color: boolean, compact = false): string {
  const head = ['pipeline', 'rows', 'done', 'pending', 'failed', 'stale', 'coverage', 'lag'];
  const align: ('left' | 'right')[] = ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'];
  if (!compact) {
    head.push('throughput', 'model');
    align.push('right', 'left');
  }
  head.push('paused');
  align.push('left');
  if (!compact) {
    head.push('last error');
    align.push('left');
  }
  const t = new Table({ head, colAligns: align, style: tableStyle(color) });
  for (const p of rows) {
    const cells = [printable(p.name), count(p.rows), count(p.done), count(p.pending), count(p.failed), count(p.stale), percent(p.coverage), duration(p.lag_seconds)];
    if (!compact) cells.push(rate(p.throughput), printable(p.model_id ?? ''));
    cells.push(p.paused ? 'yes' : 'no');
    if (!compact) cells.push(clip(p.last_error, 60));
    t.push(cells);
  }
  return t.toString();
}

/** One pipeline in full (`steadytext pipelines <name>`): its settings and counts, then its failed rows. */
export function pipelineDetail(p: PipelineStatusRow, failures: PipelineFailureRow[], color: boolean): string {
  const models = Object.entries(p.models ?? {});
  const fields: [string, string][] = [
    ['source', printable(p.source)],
    ['input', printable(p.input)],
    ['destination', printable(p.destination)],
    ['function', p.function_name],
    ['model', printable(p.model_id ?? '')],
    ['priority', String(p.priority)],
    ['state', stateOf(p)],
    ['rows', count(p.rows)],
    ['done', `${count(p.done)} (${percent(p.coverage)})`],
    ['pending', count(p.pending)],
    ['processing', count(p.processing)],
    ['failed', count(p.failed)],
    ['stale', count(p.stale)],
    ['lag', p.lag_seconds === null ? 'none (nothing pending)' : duration(p.lag_seconds)],
    ['throughput', `${rate(p.throughput)} (rows written, last minute)`],
    ['values from', models.length ? models.map(([m, n]) => `${printable(m)} (${count(n)})`).join(', ') : 'none yet'],
    ['last error', p.last_error === null ? 'none' : printable(p.last_error)],
    ['created', p.created_at],
  ];
  const width = Math.max(...fields.map(([k]) => k.length));
  const out = [`pipeline ${printable(p.name)}`, ...fields.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`), ''];
  if (p.failed === 0 && failures.length === 0) {
    out.push('failed rows: none');
  } else {
    const shown = failures.length < p.failed ? ` (the ${failures.length} most recent)` : '';
    out.push(`failed rows: ${count(Math.max(p.failed, failures.length))}${shown}; \`steadytext pipelines retry ${printable(p.name)}\` sends them back to pending`);
    const t = new Table({ head: ['row key', 'attempts', 'failed at', 'error'], colAligns: ['left', 'right', 'left', 'left'], style: tableStyle(color) });
    for (const f of failures) t.push([printable(JSON.stringify(f.row_key)), String(f.attempts), f.failed_at ?? '', clip(f.error, 100)]);
    out.push(t.toString());
  }
  return out.join('\n') + '\n';
}
