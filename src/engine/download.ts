// Downloading models from the Hugging Face hub (or a mirror: HF_ENDPOINT) into
// the model dir. Only `steadytext models pull` calls this, or the engine when
// STEADYTEXT_ALLOW_DOWNLOAD=1. node-llama-cpp's downloader (ipull: ranged
// requests, retries, resume from its `.ipull` file) fetches the bytes; around
// it, this file makes the result safe to load:
// - the hub's own size and sha256 of the file (HEAD on its resolve URL:
//   `X-Linked-Size` / `X-Linked-Etag`, or `Content-Length` / `ETag`) are
//   checked before the file is accepted; a mismatch is refused and deleted;
// - bytes land in `<model dir>/.partial/` and are renamed into place only
//   once verified, so the engine never sees a partial or wrong file;
// - one process downloads a file at a time (`<model dir>/.partial/<file>.lock`,
//   taken over when its holder on this host is dead); the others wait for it.
// Bounded by a stall timeout so that an offline machine gets a clear error, not a hang.
import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createModelDownloader } from 'node-llama-cpp';
import { parseHfReference, type EngineSettings, type ModelSource } from './modelSources.ts';
import { EngineAbortedError, EngineError, HubUnreachableError } from './types.ts';

export interface DownloadProgress {
  totalSize: number;
  downloadedSize: number;
}

export interface DownloadOptions {
  /** Gives up when nothing has been received for this long (default 30 s). */
  timeoutMs?: number;
  onProgress?: (p: DownloadProgress) => void;
  /** Called once when another process holds the file's download lock and this one waits for it. */
  onWait?: (holder: string) => void;
  signal?: AbortSignal;
}

/** What the hub says about a file before it is downloaded. */
export interface HubFileInfo {
  /** The resolve URL the downloader starts from. */
  url: string;
  size?: number;
  /** sha256 of the content, when the hub gives one (LFS files: `X-Linked-Etag`). */
  sha256?: string;
}

/** The hub to download from: HF_ENDPOINT (a mirror, or a local server), else huggingface.co. */
export function hubEndpoint(settings: EngineSettings): string {
  return settings.hubEndpoint;
}

/** `<endpoint>/<owner>/<repo>/resolve/main/<file>`: the hub's download URL of a file. */
export function resolveUrl(endpoint: string, reference: string): string {
  const { owner, repo, file } = parseHfReference(reference);
  const encodedFile = file.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/resolve/main/${encodedFile}`;
}

/** Downloads `source` (an hf: reference) to its localPath, verified; returns that path. */
export async function downloadModel(source: ModelSource, settings: EngineSettings, opts: DownloadOptions = {}): Promise<string> {
  if (source.kind !== 'hf') throw new EngineError(`${source.reference} is not a Hugging Face reference; nothing to download`);
  if (existsSync(source.localPath)) return source.localPath;
  const endpoint = hubEndpoint(settings);
  const host = new URL(endpoint).host;
  await assertReachable(endpoint);
  const finalDir = path.dirname(source.localPath);
  const fileName = path.basename(source.localPath);
  const partialDir = path.join(finalDir, '.partial');
  mkdirSync(partialDir, { recursive: true });
  const timeoutMs = opts.timeoutMs ?? 30_000;
  try {
    return await withFileLock(path.join(partialDir, `${fileName}.lock`), source.localPath, opts, async () => {
      const info = await hubFileInfo(resolveUrl(endpoint, source.reference), settings, timeoutMs, source.reference);
      // Bytes that arrive with the wrong size or hash are deleted and fetched
      // once more before they are refused, as a cut connection is retried (a
      // full CI run saw the downloader deliver 63 bytes too many once, under load).
      for (let attempt = 1; ; attempt++) {
        const staged = await fetchFile(info, partialDir, fileName, endpoint, settings, timeoutMs, opts, host);
        try {
          await verify(staged, info, source.reference);
        } catch (err) {
          if (attempt < 2 && err instanceof EngineError) continue;
          throw err;
        }
        renameSync(staged, source.localPath);
        return source.localPath;
      }
    });
  } catch (err) {
    if (err instanceof EngineError) throw err;
    if (opts.signal?.aborted) throw new EngineAbortedError(`download of ${source.reference} aborted`, { cause: err });
    throw new EngineError(`download of ${source.reference} from ${host} failed: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * HEAD on the resolve URL, redirects not followed (as huggingface_hub does):
 * an LFS file answers 302 with `X-Linked-Size` and `X-Linked-Etag` (its
 * sha256); a small file answers 200 with `Content-Length` (its ETag is a git
 * hash, not checked). A relative redirect (a renamed repo) is followed.
 */
export async function hubFileInfo(url: string, settings: EngineSettings, timeoutMs: number, reference: string): Promise<HubFileInfo> {
  let current = url;
  for (let hop = 0; hop < 5; hop++) {
    let res: Response;
    try {
      res = await fetch(current, { method: 'HEAD', redirect: 'manual', headers: authHeaders(settings), signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      const host = new URL(current).host;
      throw new HubUnreachableError(host, `cannot reach ${host} for ${reference}: ${reasonOf(err)}`, { cause: err });
    }
    const linkedSize = res.headers.get('x-linked-size');
    const linkedEtag = res.headers.get('x-linked-etag') ?? undefined;
    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.get('location');
      if (linkedSize !== null || !location || /^[a-z]+:\/\//i.test(location)) {
        return { url, size: parseSize(linkedSize), sha256: sha256Of(linkedEtag) };
      }
      current = new URL(location, current).href;
      continue;
    }
    if (res.status === 401 || res.status === 403) {
      throw new EngineError(`${reference}: the hub refused access (${res.status}); set HF_TOKEN if the repository needs it`);
    }
    if (res.status === 404) {
      throw new EngineError(`${reference}: not found on ${new URL(url).host} (404); check the reference or the mirror`);
    }
    // A plain file server that does not answer HEAD: nothing to check against but the download itself.
    if (res.status === 405 || res.status === 501) return { url };
    if (!res.ok) throw new EngineError(`${reference}: ${new URL(url).host} answered ${res.status} ${res.statusText}`);
    return {
      url,
      size: parseSize(linkedSize ?? res.headers.get('content-length')),
      sha256: sha256Of(linkedEtag ?? res.headers.get('etag') ?? undefined),
    };
  }
  throw new EngineError(`${reference}: too many redirects from ${new URL(url).host}`);
}

function parseSize(raw: string | null): number | undefined {
  if (raw === null || !/^\d+$/.test(raw.trim())) return undefined;
  return Number(raw);
}

/** An ETag that is a sha256 (64 hex digits, maybe quoted or weak); anything else is no content hash. */
function sha256Of(etag: string | undefined): string | undefined {
  const m = /^(?:W\/)?"?([0-9a-f]{64})"?$/i.exec(etag?.trim() ?? '');
  return m ? m[1].toLowerCase() : undefined;
}

function authHeaders(settings: EngineSettings): Record<string, string> {
  return settings.hubToken ? { Authorization: `Bearer ${settings.hubToken}` } : {};
}

/** node-llama-cpp's downloader into `dir` (resumes from its `.ipull` file there); returns the staged path. */
async function fetchFile(
  info: HubFileInfo,
  dir: string,
  fileName: string,
  endpoint: string,
  settings: EngineSettings,
  timeoutMs: number,
  opts: DownloadOptions,
  host: string,
): Promise<string> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  let rejectStall: (e: Error) => void = () => {};
  const stalled = new Promise<never>((_, reject) => (rejectStall = reject));
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const err = new EngineError(`no data from ${host} for ${timeoutMs / 1000} s (offline?)`);
      controller.abort(err);
      rejectStall(err);
    }, timeoutMs);
  };
  arm();
  try {
    const work = (async () => {
      const downloader = await createModelDownloader({
        modelUri: info.url,
        dirPath: dir,
        fileName,
        headers: authHeaders(settings),
        endpoints: { huggingFace: `${endpoint}/` },
        showCliProgress: false,
        deleteTempFileOnCancel: false,
        // A finished file left in .partial/ was refused or never verified: fetch it again.
        skipExisting: false,
        onProgress: (p) => {
          arm();
          opts.onProgress?.({ totalSize: p.totalSize, downloadedSize: p.downloadedSize });
        },
      });
      return downloader.download({ signal: controller.signal });
    })();
    work.catch(() => {});
    return await Promise.race([work, stalled]);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** The staged file must be a GGUF of the hub's size and sha256; otherwise it is deleted and refused. */
async function verify(staged: string, info: HubFileInfo, reference: string): Promise<void> {
  const refuse = (why: string): never => {
    rmSync(staged, { force: true });
    throw new EngineError(`${reference}: ${why}; the file was deleted, run \`steadytext models pull\` again`);
  };
  const size = statSync(staged).size;
  if (info.size !== undefined && size !== info.size) {
    refuse(`downloaded ${size} bytes but the hub says the file has ${info.size}`);
  }
  if (info.sha256 !== undefined) {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(staged)) hash.update(chunk as Buffer);
    const actual = hash.digest('hex');
    if (actual !== info.sha256) refuse(`sha256 ${actual} does not match the hub's ${info.sha256}`);
  }
  const fd = openSync(staged, 'r');
  const magic = Buffer.alloc(4);
  try {
    readSync(fd, magic, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (magic.toString('latin1') !== 'GGUF') refuse('the downloaded file is not a GGUF file');
}

interface LockHolder {
  pid: number;
  host: string;
}

/**
 * Runs `fn` holding `lockPath` (created exclusively). While another live
 * process holds it, waits; when that one has put `finalPath` in place, returns
 * it without downloading. A lock whose holder on this host is dead is taken over.
 */
async function withFileLock(lockPath: string, finalPath: string, opts: DownloadOptions, fn: () => Promise<string>): Promise<string> {
  let announced = false;
  for (;;) {
    if (existsSync(finalPath)) return finalPath;
    if (opts.signal?.aborted) throw new EngineAbortedError('download aborted');
    let fd: number | undefined;
    try {
      fd = openSync(lockPath, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (fd !== undefined) {
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, host: os.hostname() } satisfies LockHolder));
      } finally {
        closeSync(fd);
      }
      try {
        return await fn();
      } finally {
        rmSync(lockPath, { force: true });
      }
    }
    const holder = readHolder(lockPath);
    // Dead holder on this host, or a lock left empty by a process that died right after creating it.
    if ((holder && holder.host === os.hostname() && !alive(holder.pid)) || (!holder && lockAgeMs(lockPath) > 10_000)) {
      // Taken over atomically: only one waiter's rename succeeds.
      const stale = `${lockPath}.stale.${process.pid}`;
      try {
        renameSync(lockPath, stale);
        rmSync(stale, { force: true });
      } catch {
        // another waiter took it over first
      }
      continue;
    }
    if (!announced) {
      announced = true;
      opts.onWait?.(holder ? `process ${holder.pid} on ${holder.host}` : 'another process');
    }
    await sleep(200);
  }
}

function readHolder(lockPath: string): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(lockPath, 'utf8')) as LockHolder;
    return Number.isInteger(h.pid) && typeof h.host === 'string' ? h : undefined;
  } catch {
    return undefined; // being written, or gone
  }
}

function lockAgeMs(lockPath: string): number {
  try {
    return Date.now() - statSync(lockPath).mtimeMs;
  } catch {
    return 0;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why a fetch failed: undici hides the cause (ECONNREFUSED, ENOTFOUND) behind 'fetch failed'. */
function reasonOf(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  return e.cause?.code ? `${e.message}: ${e.cause.code}` : e.message;
}

/**
 * Throws HubUnreachableError unless the hub answers at all: its host resolves
 * and a HEAD of its root gets any HTTP answer (10 s at most). Callers with
 * several files to fetch ask once, up front.
 */
export async function checkHubReachable(settings: EngineSettings): Promise<void> {
  const endpoint = hubEndpoint(settings);
  await assertReachable(endpoint);
  try {
    await fetch(endpoint, { method: 'HEAD', redirect: 'manual', signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const host = new URL(endpoint).host;
    throw new HubUnreachableError(host, `cannot reach ${host}: ${reasonOf(err)}`, { cause: err });
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
    throw new HubUnreachableError(
      host,
      `cannot reach ${host} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): this machine looks offline`,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
  }
}
