// Downloading models from Hugging Face into the cache dir. Only
// `steadytext models pull` calls this, or the engine when
// STEADYTEXT_ALLOW_DOWNLOAD=1. Bounded by a timeout so that an offline machine
// gets a clear error, not a hang.
import { lookup } from 'node:dns/promises';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { createModelDownloader } from 'node-llama-cpp';
import { parseHfReference, type EngineSettings, type ModelSource } from './modelSources.ts';
import { EngineError } from './types.ts';

export interface DownloadProgress {
  totalSize: number;
  downloadedSize: number;
}

export interface DownloadOptions {
  /** Gives up when nothing has been received for this long (default 30 s). */
  timeoutMs?: number;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
}

/** Downloads `source` (an hf: reference) to its localPath; returns that path. */
export async function downloadModel(source: ModelSource, settings: EngineSettings, opts: DownloadOptions = {}): Promise<string> {
  if (source.kind !== 'hf') throw new EngineError(`${source.reference} is not a Hugging Face reference; nothing to download`);
  if (existsSync(source.localPath)) return source.localPath;
  const { owner, repo, file } = parseHfReference(source.reference);
  await assertReachable(settings.env.HF_ENDPOINT ?? 'https://huggingface.co');
  mkdirSync(settings.modelDir, { recursive: true });
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const controller = new AbortController();
  const onAbort = () => controller.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  let rejectStall: (e: Error) => void = () => {};
  const stalled = new Promise<never>((_, reject) => (rejectStall = reject));
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const err = new EngineError(`no data from huggingface.co for ${timeoutMs / 1000} s (offline?)`);
      controller.abort(err);
      rejectStall(err);
    }, timeoutMs);
  };
  arm();
  try {
    const work = (async () => {
      const downloader = await createModelDownloader({
        modelUri: `hf:${owner}/${repo}/${file}`,
        dirPath: settings.modelDir,
        fileName: path.basename(file),
        showCliProgress: false,
        deleteTempFileOnCancel: false,
        onProgress: (p) => {
          arm();
          opts.onProgress?.({ totalSize: p.totalSize, downloadedSize: p.downloadedSize });
        },
      });
      return downloader.download({ signal: controller.signal });
    })();
    work.catch(() => {});
    const downloaded = await Promise.race([work, stalled]);
    if (path.resolve(downloaded) !== path.resolve(source.localPath) && !existsSync(source.localPath)) {
      throw new EngineError(`downloaded ${downloaded}, expected ${source.localPath}`);
    }
    return source.localPath;
  } catch (err) {
    if (err instanceof EngineError) throw err;
    throw new EngineError(`download of ${source.reference} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Offline detection: the downloader retries a failed connection for a long
 * time, so check first that the host resolves (5 s at most).
 */
async function assertReachable(endpoint: string): Promise<void> {
  const host = new URL(endpoint).hostname;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      lookup(host),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('DNS lookup timed out')), 5000);
      }),
    ]);
  } catch (err) {
    throw new EngineError(`cannot reach ${host} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): this machine looks offline`);
  } finally {
    clearTimeout(timer);
  }
}
