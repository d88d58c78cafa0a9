// One inference server's transport: JSON over HTTP with a request timeout, a
// cap on requests in flight, and retries with exponential backoff on 429, 5xx
// and connection errors. The API key goes in the Authorization header only;
// no message this file builds ever contains it (a server that echoes it has
// it blanked out).
//
// Each error has two texts: `message` for the operator (the server's URL,
// method and path, its answer up to 500 characters), and `publicMessage`,
// which a failed job's `error` shows the tenant: the role's server by name,
// the HTTP status and the first line of the server's message, without URLs
// or host names, at most 200 characters.
import { EngineAbortedError, EngineError, EngineInputError, type EngineErrorOptions } from './types.ts';

/** What the client needs to know about one server. */
export interface HttpClientOptions {
  /** Base URL, e.g. http://gpu-1:8080 (a path prefix such as /v1 is kept). */
  url: string;
  /** Sent as `Authorization: Bearer <apiKey>`; never logged. */
  apiKey?: string;
  /** One request's time limit (each attempt). */
  timeoutMs: number;
  /** Requests to this server at once from this process. */
  maxInFlight: number;
  /** Attempts after the first on 429, 5xx, a timeout or a connection error. */
  retries: number;
  /** Backoff before retry n (0-based): base * 2^n, capped at 30 s; a 429's Retry-After wins when longer. */
  retryBackoffMs: number;
  /** Names the server in the operator's errors, e.g. "llama-server at http://gpu-1:8080". */
  label: string;
  /** Names it in what tenants see, without its address (default "the inference server"). */
  publicLabel?: string;
}

/** A server answered with an error, or could not be reached, after every retry. */
export class HttpBackendError extends EngineError {
  constructor(
    message: string,
    readonly status?: number,
    options?: EngineErrorOptions,
  ) {
    super(message, options);
  }
}

/** Answers that are known to be deterministic failures: retrying the request cannot help. */
export type PermanentFailure = (status: number, text: string) => string | undefined;

/**
 * Answers whose status says "server error" but which refuse the request's
 * input, every time (llama-server's 500 for an embedding input larger than
 * its physical batch): thrown as EngineInputError, not retried.
 */
export type InputRefusal = (status: number, text: string) => boolean;

const MAX_BACKOFF_MS = 30_000;
const MAX_ERROR_TEXT = 500;
const MAX_PUBLIC_TEXT = 200;

/** A counting semaphore: at most `size` holders at once, first come first served. */
class Semaphore {
  private held = 0;
  private waiters: Array<() => void> = [];
  constructor(private readonly size: number) {}

  async acquire(signal?: AbortSignal): Promise<void> {
    if (this.held < this.size) {
      this.held++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const go = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== go);
        reject(new EngineAbortedError('aborted while waiting for a free request slot'));
      };
      this.waiters.push(go);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next(); // the slot passes straight to the next waiter
    else this.held--;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new EngineAbortedError('aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new EngineAbortedError('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The server's own error text: `error.message`, `error`, `message`, or the body itself. */
export function errorText(body: string): string {
  let text = body.trim();
  try {
    const j = JSON.parse(body) as { error?: unknown; message?: unknown; detail?: unknown };
    const e = j.error;
    if (typeof e === 'string') text = e;
    else if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') {
      text = (e as { message: string }).message;
    } else if (typeof j.message === 'string') text = j.message;
    else if (typeof j.detail === 'string') text = j.detail;
  } catch {
    // not JSON: the raw text
  }
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT)}...` : text || '(empty body)';
}

/** `text` with every occurrence of each secret replaced (longest first). */
function blank(text: string, secrets: Array<string | undefined>, by: string): string {
  for (const s of secrets.filter((x): x is string => !!x && x.length >= 3).sort((a, b) => b.length - a.length)) {
    text = text.split(s).join(by);
  }
  return text;
}

/**
 * The server's message as a tenant may read it: its first line, URLs and the
 * server's own host name blanked out, at most 200 characters.
 */
export function publicText(text: string, serverUrl: string): string {
  let host: string[] = [];
  try {
    const u = new URL(serverUrl);
    host = [u.host, u.hostname];
  } catch {
    // no host to blank
  }
  const line = text.split(/\r?\n/).find((l) => l.trim() !== '')?.trim() ?? '(empty body)';
  const out = blank(line.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>)\]]+/gi, '<url>'), host, '<server>');
  return out.length > MAX_PUBLIC_TEXT ? `${out.slice(0, MAX_PUBLIC_TEXT)}...` : out;
}

function retryAfterMs(res: Response): number | undefined {
  const h = res.headers.get('retry-after');
  if (!h) return undefined;
  const s = Number(h);
  if (Number.isFinite(s)) return s * 1000;
  const at = Date.parse(h);
  return Number.isFinite(at) ? at - Date.now() : undefined;
}

export class HttpClient {
  private readonly slots: Semaphore;

  constructor(
    readonly options: HttpClientOptions,
    private readonly permanent: PermanentFailure = () => undefined,
    private readonly refusesInput: InputRefusal = () => false,
  ) {
    this.slots = new Semaphore(options.maxInFlight);
  }

  private endpoint(path: string): string {
    return this.options.url.replace(/\/+$/, '') + path;
  }

  /**
   * One JSON request, retried per the options. Throws EngineAbortedError when
   * `signal` aborts, EngineInputError on a 400/404/413/422 (or an answer
   * `refusesInput` names) that retrying cannot fix, and HttpBackendError (with the server's error text) once retries run out.
   */
  async json(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<unknown> {
    const o = this.options;
    const where = `${o.label} ${method} ${path}`;
    const who = o.publicLabel ?? 'the inference server';
    /** The server's text with the API key blanked, for the operator, and its public form. */
    const texts = (raw: string) => {
      const full = blank(errorText(raw), [o.apiKey], '<api key>');
      return { full, short: publicText(full, o.url) };
    };
    let last = '';
    let lastPublic = '';
    let lastStatus: number | undefined;
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw new EngineAbortedError(`${where}: aborted`);
      let wait: number | undefined;
      await this.slots.acquire(signal);
      try {
        const timeout = AbortSignal.timeout(o.timeoutMs);
        const res = await fetch(this.endpoint(path), {
          method,
          headers: {
            accept: 'application/json',
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}),
          },
          body: body !== undefined ? JSON.stringify(body) : undefined,
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        const text = await res.text();
        if (res.ok) {
          try {
            return JSON.parse(text);
          } catch {
            throw new HttpBackendError(`${where}: the answer is not JSON: ${texts(text).full}`, res.status, {
              publicMessage: `${who}: the answer is not JSON`,
            });
          }
        }
        const { full, short } = texts(text);
        const hint = this.permanent(res.status, full);
        if (hint) {
          throw new HttpBackendError(`${where}: HTTP ${res.status}: ${full} (${hint})`, res.status, {
            publicMessage: `${who}: HTTP ${res.status}: ${short} (${hint})`,
          });
        }
        if (this.refusesInput(res.status, full)) {
          throw new EngineInputError(`${where}: HTTP ${res.status}: ${full}`, { publicMessage: `${who}: HTTP ${res.status}: ${short}` });
        }
        if (res.status === 429 || res.status >= 500) {
          last = `HTTP ${res.status}: ${full}`;
          lastPublic = `HTTP ${res.status}: ${short}`;
          lastStatus = res.status;
          if (res.status === 429) wait = retryAfterMs(res);
        } else if (res.status === 400 || res.status === 404 || res.status === 413 || res.status === 422) {
          throw new EngineInputError(`${where}: HTTP ${res.status}: ${full}`, { publicMessage: `${who}: HTTP ${res.status}: ${short}` });
        } else {
          throw new HttpBackendError(`${where}: HTTP ${res.status}: ${full}`, res.status, { publicMessage: `${who}: HTTP ${res.status}: ${short}` });
        }
      } catch (err) {
        if (err instanceof EngineError) throw err;
        if (signal?.aborted) throw new EngineAbortedError(`${where}: aborted`, { cause: err });
        const e = err as Error & { cause?: { code?: string; message?: string } };
        last =
          e.name === 'TimeoutError'
            ? `no answer within ${o.timeoutMs / 1000} s`
            : `connection failed: ${e.cause?.code ?? e.cause?.message ?? e.message}`;
        // The driver's text can name the address: only an error code goes to tenants.
        lastPublic = e.name === 'TimeoutError' || e.cause?.code ? last : 'connection failed';
        lastStatus = undefined;
      } finally {
        this.slots.release();
      }
      if (attempt >= o.retries) {
        const attempts = `(after ${attempt + 1} attempt${attempt ? 's' : ''})`;
        throw new HttpBackendError(`${where}: ${last} ${attempts}`, lastStatus, { publicMessage: `${who}: ${lastPublic} ${attempts}` });
      }
      const backoff = Math.min(o.retryBackoffMs * 2 ** attempt, MAX_BACKOFF_MS);
      await sleep(Math.min(Math.max(backoff, wait ?? 0), MAX_BACKOFF_MS), signal);
    }
  }
}
