// Fetching the model files a worker on this host needs, for `steadytext models
// pull` and for `steadytext up` before it starts its worker: one file at a
// time, a progress bar on a terminal, picked up again after an interruption
// and verified against the hub (src/engine/download.ts). A hub that
// cannot be reached is asked once and said once, with what to do instead.
import cliProgress from 'cli-progress';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fixFor, modelSource, type EngineSettings, type ModelSource } from '../engine/modelSources.ts';
import { HubUnreachableError, type ModelRole } from '../engine/types.ts';

export interface PullOptions {
  /** Give up on a file when no data has arrived for this long. */
  timeoutMs: number;
  /** A line for the user (progress and outcome of each file). */
  say: (line: string) => void;
  /** A line about one file that could not be fetched. */
  warn: (line: string) => void;
  /** Draw a progress bar per file (on stderr: a terminal). */
  progressBars: boolean;
  /** The command that picks up an interrupted pull, for the message (`steadytext up`). */
  again: string;
}

export interface PullResult {
  /** Files that could not be fetched or found, with why (the hub not reached: see `unreachable`). */
  failed: Array<{ role: ModelRole; message: string }>;
  /** Set when the hub could not be reached; the files in `notFetched` were not tried. */
  unreachable?: HubUnreachableError;
  /** Hub files still missing because the hub could not be reached. */
  notFetched: ModelSource[];
  /** Set when Ctrl-C (SIGINT) or SIGTERM stopped the downloads: the signal's name. */
  interrupted?: NodeJS.Signals;
}

export function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

/** Puts each role's model file in place (downloading the missing hub files); says what it did per role. */
export async function pullModels(settings: EngineSettings, roles: readonly ModelRole[], opts: PullOptions): Promise<PullResult> {
  const { checkHubReachable } = await import('../engine/download.ts');
  const result: PullResult = { failed: [], notFetched: [] };
  const toFetch: ModelSource[] = [];
  for (const role of roles) {
    const source = modelSource(role, settings);
    if (source.kind === 'path') {
      if (existsSync(source.localPath)) opts.say(`${role}: local file ${source.localPath} (nothing to download)`);
      else result.failed.push({ role, message: `${source.localPath} does not exist: ${fixFor(source, settings)}` });
    } else if (existsSync(source.localPath)) {
      opts.say(`${role}: present ${source.localPath}`);
    } else {
      toFetch.push(source);
    }
  }
  for (const f of result.failed) opts.warn(`${f.role}: ${f.message}`);
  if (toFetch.length === 0) return result;
  try {
    await checkHubReachable(settings);
  } catch (err) {
    if (!(err instanceof HubUnreachableError)) throw err;
    return { ...result, unreachable: err, notFetched: toFetch };
  }
  // Ctrl-C stops the download (what arrived stays in .partial/ for the next
  // pull) and the caller says so. Without this, the first SIGINT would only
  // reach node-llama-cpp's own listener, which does not exit.
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    result.interrupted = signal;
    controller.abort();
    // The downloader may wait on a stalled connection before it unwinds: the user asked to stop now.
    setTimeout(() => exitInterrupted(signal, opts.again), 2000).unref();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fetchAll(toFetch, settings, opts, result, controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function fetchAll(
  toFetch: ModelSource[],
  settings: EngineSettings,
  opts: PullOptions,
  result: PullResult,
  signal: AbortSignal,
): Promise<PullResult> {
  const { downloadModel, hubEndpoint } = await import('../engine/download.ts');
  // One at a time: the files are large and one bar at a time stays readable.
  for (const [i, source] of toFetch.entries()) {
    const { role } = source;
    const file = path.basename(source.localPath);
    opts.say(`${role}: downloading ${source.reference} from ${hubEndpoint(settings)}`);
    const bar = new cliProgress.SingleBar(
      { format: `${role.padEnd(10)} |{bar}| {percentage}% {done}/{size} ${file}`, hideCursor: true, noTTYOutput: false },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    try {
      await downloadModel(source, settings, {
        timeoutMs: opts.timeoutMs,
        signal,
        onWait: (holder) => opts.say(`${role}: waiting for ${holder}, which is downloading ${file}`),
        onProgress: ({ totalSize, downloadedSize }) => {
          if (!opts.progressBars) return;
          const payload = { done: formatSize(downloadedSize), size: formatSize(totalSize) };
          if (!started) {
            bar.start(Math.max(totalSize, 1), downloadedSize, payload);
            started = true;
          } else bar.update(downloadedSize, payload);
        },
      });
      if (started) bar.stop();
      opts.say(`${role}: saved ${source.localPath}`);
    } catch (err) {
      if (started) bar.stop();
      if (result.interrupted) return { ...result, notFetched: toFetch.slice(i) };
      if (err instanceof HubUnreachableError) {
        // The next file would meet the same wall: stop here and say it once.
        return { ...result, unreachable: err, notFetched: toFetch.slice(i) };
      }
      result.failed.push({ role, message: (err as Error).message });
      opts.warn(`${role}: ${(err as Error).message}`);
    }
  }
  return result;
}

/** Ends the process after a pull stopped by a signal, with the signal's exit status (130 for SIGINT, 143 for SIGTERM). */
export function exitInterrupted(signal: NodeJS.Signals, again: string): never {
  process.stderr.write(`steadytext: ${signal}: download stopped; \`${again}\` picks it up again\n`);
  process.exit(signal === 'SIGTERM' ? 143 : 130);
}

/**
 * What to do when the hub cannot be reached and `missing` are not here: the
 * files from elsewhere, a mirror, or the tiny test models. One message, for
 * `models pull` and `up` alike.
 */
export function unreachableAdvice(settings: EngineSettings, missing: readonly ModelSource[], err: HubUnreachableError): string {
  const files = missing.map((s) => `${path.basename(s.localPath)} (${s.role})`).join(', ');
  return [
    `${err.message}; not downloaded: ${files}`,
    'next, one of:',
    `  - copy those files into ${settings.modelDir} from a machine that has them (\`steadytext models pull\` there downloads them)`,
    `  - set HF_ENDPOINT to a mirror this machine can reach (now: ${settings.hubEndpoint})`,
    '  - try the whole pipeline offline with the tiny test models (made here, no download; their output is test noise): `steadytext up --models tiny`',
  ].join('\n');
}
