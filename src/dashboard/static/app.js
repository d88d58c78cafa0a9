// pg-steadytext dashboard: polls /api/summary every 2 s and renders it with
// plain DOM calls (textContent only: job data never becomes markup).
'use strict';

const REFRESH_MS = 2000;
const $ = (sel) => document.querySelector(sel);
const rendered = new Map(); // table id -> JSON of the rows last drawn (redraw only on change)

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
  return e;
}

const num = (n) => (n == null ? '–' : Number(n).toLocaleString());
function secs(s) {
  if (s == null) return '–';
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  return `${(s / 60).toFixed(1)} min`;
}
function ago(iso) {
  if (!iso) return '–';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return s < 60 ? `${Math.round(s)} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : new Date(iso).toLocaleString();
}

function fillTable(id, rows, rowFn, emptyText, columns) {
  const key = JSON.stringify(rows);
  if (rendered.get(id) === key) return;
  rendered.set(id, key);
  const body = $(`#${id} tbody`);
  body.replaceChildren(
    ...(rows.length ? rows.map(rowFn) : [el('tr', {}, el('td', { class: 'empty', colspan: String(columns) }, emptyText))]),
  );
}

function drawChart(history, intervalMs) {
  const svg = $('#depth-chart');
  const W = 720, H = 180, PAD = 24;
  const max = Math.max(1, ...history.map((s) => Math.max(s.pending, s.processing)));
  const t0 = history.length ? history[0].t : 0;
  const t1 = history.length ? history[history.length - 1].t : 1;
  const x = (t) => PAD + ((t - t0) / Math.max(1, t1 - t0)) * (W - PAD - 4);
  const y = (v) => H - PAD - (v / max) * (H - 2 * PAD);
  const ns = 'http://www.w3.org/2000/svg';
  const node = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  };
  const parts = [
    node('line', { class: 'grid', x1: PAD, x2: W - 4, y1: y(0), y2: y(0) }),
    node('line', { class: 'grid', x1: PAD, x2: W - 4, y1: y(max), y2: y(max) }),
    node('text', { class: 'axis', x: 2, y: y(max) + 4 }, String(max)),
    node('text', { class: 'axis', x: 2, y: y(0) + 4 }, '0'),
    node('text', { class: 'axis', x: PAD, y: H - 4 }, history.length > 1 ? `${((t1 - t0) / 60000).toFixed(1)} min ago` : ''),
    node('text', { class: 'axis', x: W - 4, y: H - 4, 'text-anchor': 'end' }, 'now'),
  ];
  for (const series of ['pending', 'processing']) {
    const points = history.map((s) => `${x(s.t).toFixed(1)},${y(s[series]).toFixed(1)}`).join(' ');
    parts.push(node('polyline', { class: series, points }));
  }
  svg.replaceChildren(...parts);
  const last = history[history.length - 1];
  const minutes = ((t1 - t0) / 60000).toFixed(1);
  $('#depth-desc').textContent = last
    ? `Queue depth over the last ${minutes} min (a sample every ${intervalMs / 1000} s, peak ${max}): now ${last.pending} pending, ${last.processing} processing.`
    : 'Waiting for samples…';
}

// Coverage floored to one decimal: 100.0 % only when every row is done.
const percent = (c) => `${(Math.floor(c * 10 + 1e-9) / 10).toFixed(1)} %`;
const perSecond = (r) => (r == null ? '–' : r === 0 ? '0' : r.toFixed(r < 10 ? 2 : 1));
const pipelineState = (p) => (p.paused ? 'paused' : p.backfilling ? 'backfilling' : 'running');

/** The pipelines panel: shown once any pipeline exists (steadytext_pipeline_status()). */
function renderPipelines(pipelines) {
  $('#pipelines-section').hidden = pipelines.length === 0;
  fillTable('pipelines', pipelines.map((p) => ({ ...p, lag_seconds: p.lag_seconds == null ? null : Math.round(p.lag_seconds * 10) / 10 })), (p) =>
    el('tr', { 'data-pipeline': p.name },
      el('th', { scope: 'row' }, el('code', {}, p.name), el('div', { class: 'sub' }, `${p.source} → ${p.destination}`)),
      el('td', { class: 'coverage' },
        el('meter', { min: '0', max: '100', value: String(p.coverage), 'aria-label': `Coverage of ${p.name}` }),
        el('span', { 'data-col': 'coverage' }, percent(p.coverage)),
        el('div', { class: 'sub' }, `${num(p.done)} done`)),
      el('td', { class: 'num' }, num(p.rows)),
      el('td', { class: 'num', 'data-col': 'pending' }, num(p.pending)),
      el('td', { class: 'num', 'data-col': 'failed' }, num(p.failed)),
      el('td', { class: 'num' }, num(p.stale)),
      el('td', { class: 'num' }, secs(p.lag_seconds)),
      el('td', { class: 'num' }, perSecond(p.throughput)),
      el('td', {}, el('code', {}, p.model_id ?? '')),
      el('td', { 'data-col': 'state' }, el('span', { class: `badge ${pipelineState(p)}` }, pipelineState(p))),
      el('td', { class: 'error' }, p.last_error ?? ''),
    ), 'No pipelines', 11);
}

async function retry(id, button) {
  button.disabled = true;
  button.textContent = 'Retrying…';
  try {
    const res = await fetch(`/api/retry/${encodeURIComponent(id)}`, { method: 'POST', headers: { 'X-Steadytext-Dashboard': '1' } });
    const body = await res.json();
    setStatus(res.ok ? `Job ${id} queued again.` : `Retry of ${id} failed: ${body.error}`, !res.ok, true);
  } catch (err) {
    setStatus(`Retry of ${id} failed: ${err.message}`, true, true);
  }
  await refresh();
}

/** `sticky`: a message about an action, kept for a few refreshes. */
function setStatus(text, isError = false, sticky = false) {
  if (sticky) lastMessageAt = Date.now();
  const s = $('#status');
  s.textContent = text;
  s.classList.toggle('error', isError);
}

function render(d) {
  for (const k of ['pending', 'processing', 'completed', 'failed', 'cancelled']) $(`#count-${k}`).textContent = num(d.totals[k]);
  drawChart(d.history, d.sample_interval_ms);
  fillTable('functions', d.functions, (f) =>
    el('tr', { 'data-function': f.function_name },
      el('th', { scope: 'row' }, f.function_name),
      el('td', { class: 'num' }, num(f.pending)),
      el('td', { class: 'num' }, num(f.processing)),
      el('td', { class: 'num', 'data-col': 'completed' }, num(f.completed)),
      el('td', { class: 'num' }, num(f.failed)),
      el('td', { class: 'num' }, f.throughput_per_minute == null ? '–' : f.throughput_per_minute.toFixed(1)),
      el('td', { class: 'num' }, secs(f.avg_processing_seconds)),
      el('td', { class: 'num', 'data-col': 'p95' }, secs(f.p95_processing_seconds)),
    ), 'No jobs yet', 8);
  renderPipelines(d.pipelines ?? []);
  fillTable('workers', d.workers.map((w) => ({ ...w, last_heartbeat: ago(w.last_heartbeat) })), (w) =>
    el('tr', { 'data-worker': w.worker_id },
      el('th', { scope: 'row' }, el('code', {}, w.worker_id)),
      el('td', {}, `${w.host} / ${w.pid}`),
      el('td', {}, el('span', { class: `badge ${w.status}` }, w.status)),
      el('td', { class: 'num' }, num(w.current_jobs)),
      el('td', { class: 'num' }, num(w.jobs_completed)),
      el('td', { class: 'num' }, num(w.jobs_failed)),
      el('td', {}, w.last_heartbeat),
    ), 'No workers in the last hour', 7);
  fillTable('failed', d.failed, (j) =>
    el('tr', { 'data-request-id': j.request_id },
      el('th', { scope: 'row' }, el('code', { title: j.request_id }, j.request_id.slice(0, 8))),
      el('td', {}, j.function_name),
      el('td', {}, j.input ?? ''),
      el('td', { class: 'error' }, j.error ?? ''),
      el('td', {}, ago(j.failed_at)),
      el('td', {}, el('button', {
        type: 'button',
        'aria-label': `Retry job ${j.request_id}`,
        onclick: (e) => retry(j.request_id, e.currentTarget),
      }, 'Retry')),
    ), 'No failed jobs', 6);
  if (d.sampler_error) setStatus(`Sampling failed: ${d.sampler_error}`, true);
  else if (Date.now() - lastMessageAt > 6000) {
    setStatus(`Updated ${new Date(d.generated_at).toLocaleTimeString()} · refreshes every ${REFRESH_MS / 1000} s`);
  }
}

let lastMessageAt = 0;
let inFlight = false;
async function refresh() {
  if (inFlight) return;
  inFlight = true;
  try {
    const res = await fetch('/api/summary', { cache: 'no-store' });
    const d = await res.json();
    if (!res.ok) throw new Error(d.error ?? res.statusText);
    render(d);
  } catch (err) {
    setStatus(`Cannot load data: ${err.message}`, true);
  } finally {
    inFlight = false;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
