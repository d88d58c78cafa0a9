// A Hugging Face hub on 127.0.0.1 for the download tests, with the hub's URL
// layout and headers: `/<owner>/<repo>/resolve/main/<file>` answers 302 to a
// CDN URL with `X-Linked-Size`, `X-Linked-Etag` (the sha256), `X-Repo-Commit`
// and `ETag`; the CDN URL serves the bytes with `Content-Length`,
// `Accept-Ranges: bytes`, `Content-Disposition` and 206 answers to `Range`.
// Faults for the tests: cut a download after N bytes, or hold it there until
// released; advertise a size or sha256 other than the bytes'.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HubFile {
  owner: string;
  repo: string;
  file: string;
  bytes: Buffer;
  /** What the hub claims (X-Linked-Size); default the real size. */
  advertisedSize?: number;
  /** What the hub claims (X-Linked-Etag); default the real sha256. */
  advertisedSha256?: string;
}

export interface HubRequest {
  method: string;
  path: string;
  range?: string;
}

interface Fault {
  file: string;
  afterBytes: number;
  kind: 'cut' | 'hold';
  sent?: () => void;
  released?: Promise<void>;
}

export interface LocalHub {
  /** The endpoint to put in HF_ENDPOINT. */
  url: string;
  requests: HubRequest[];
  /** Ranged GETs of the file's bytes so far. */
  downloads(file: string): HubRequest[];
  /** The next ranged GET of `file` sends `afterBytes` bytes, then the connection is cut. */
  cutNext(file: string, afterBytes: number): void;
  /** The next ranged GET of `file` sends `afterBytes` bytes, then stalls until release(). */
  holdNext(file: string, afterBytes: number): { sent: Promise<void>; release: () => void };
  close(): Promise<void>;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function startLocalHub(files: HubFile[]): Promise<LocalHub> {
  const bySha = new Map<string, HubFile>();
  const byPath = new Map<string, HubFile>();
  for (const f of files) {
    bySha.set(sha256(f.bytes), f);
    byPath.set(`/${f.owner}/${f.repo}/resolve/main/${f.file}`, f);
  }
  const requests: HubRequest[] = [];
  const faults: Fault[] = [];
  const sockets = new Set<import('node:net').Socket>();

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    const pathname = decodeURIComponent(url.pathname);
    requests.push({ method: req.method ?? 'GET', path: pathname, range: req.headers.range });
    const resolved = byPath.get(pathname);
    if (resolved) {
      const sha = sha256(resolved.bytes);
      res.writeHead(302, {
        Location: `http://${req.headers.host}/cdn-lfs/${sha}?filename=${encodeURIComponent(resolved.file)}`,
        'X-Linked-Size': String(resolved.advertisedSize ?? resolved.bytes.length),
        'X-Linked-Etag': `"${resolved.advertisedSha256 ?? sha}"`,
        ETag: `"${resolved.advertisedSha256 ?? sha}"`,
        'X-Repo-Commit': '0123456789abcdef0123456789abcdef01234567',
        'Content-Length': '0',
      });
      res.end();
      return;
    }
    const cdn = /^\/cdn-lfs\/([0-9a-f]{64})$/.exec(pathname);
    const file = cdn ? bySha.get(cdn[1]) : undefined;
    if (!file) {
      res.writeHead(404, { 'X-Error-Code': 'EntryNotFound', 'Content-Type': 'text/plain' });
      res.end('Entry not found');
      return;
    }
    const total = file.bytes.length;
    const headers: Record<string, string> = {
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
      'Content-Disposition': `attachment; filename="${file.file}"`,
      ETag: `"${sha256(file.bytes)}"`,
    };
    let start = 0;
    let end = total - 1;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), total - 1) : total - 1;
      if (start > end) {
        res.writeHead(416, { 'Content-Range': `bytes */${total}` });
        res.end();
        return;
      }
      headers['Content-Range'] = `bytes ${start}-${end}/${total}`;
    }
    headers['Content-Length'] = String(end - start + 1);
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const body = file.bytes.subarray(start, end + 1);
    const faultAt = range && req.method === 'GET' ? faults.findIndex((f) => f.file === file.file) : -1;
    if (faultAt < 0) {
      res.end(body);
      return;
    }
    const [fault] = faults.splice(faultAt, 1);
    res.write(body.subarray(0, fault.afterBytes), () => {
      fault.sent?.();
      if (fault.kind === 'cut') {
        req.socket.destroy();
        return;
      }
      void fault.released!.then(() => req.socket.destroy());
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    downloads: (file) => requests.filter((r) => r.method === 'GET' && r.range && r.path.startsWith('/cdn-lfs/') && bySha.get(r.path.slice(9))?.file === file),
    cutNext(file, afterBytes) {
      faults.push({ file, afterBytes, kind: 'cut' });
    },
    holdNext(file, afterBytes) {
      let release!: () => void;
      let sentResolve!: () => void;
      const released = new Promise<void>((r) => (release = r));
      const sent = new Promise<void>((r) => (sentResolve = r));
      faults.push({ file, afterBytes, kind: 'hold', sent: sentResolve, released });
      return { sent, release };
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
