// Real llama.cpp servers for the HTTP engine's tests, and a small HTTP proxy
// in front of them that can answer 429/500, hold requests, or count them.
// The llama-server binary: $STEADYTEXT_TEST_LLAMA_SERVER, else the cache
// .ci/llama-server.sh fills (keyed by the commit of the llama.cpp source that
// node-llama-cpp ships). Without either, the tests that need it skip.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureTinyModel } from '../../src/engine/tinyModels.ts';
import type { Engine, ModelRole } from '../../src/engine/types.ts';
import assert from 'node:assert/strict';
import type { HttpBackend } from '../../src/engine/httpEngine.ts';
import { TINY_DIR } from './tinyEngine.ts';
import { freePort } from '../helpers/freePort.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The binary's path, or why there is none (the reason the tests print when they skip). */
export function findLlamaServer(): { path?: string; reason?: string } {
  const fromEnv = process.env.STEADYTEXT_TEST_LLAMA_SERVER;
  if (fromEnv) {
    return existsSync(fromEnv) ? { path: fromEnv } : { reason: `STEADYTEXT_TEST_LLAMA_SERVER=${fromEnv} does not exist` };
  }
  const bundle = path.join(ROOT, 'node_modules/node-llama-cpp/llama/gitRelease.bundle');
  let commit = '';
  try {
    commit = execFileSync('git', ['bundle', 'list-heads', bundle], { encoding: 'utf8' }).split(/\s/)[0];
  } catch {
    return { reason: `cannot read the llama.cpp commit from ${bundle}` };
  }
  const cache = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'pg-steadytext/llama-server', commit);
  const bin = path.join(cache, 'bin/llama-server');
  return existsSync(bin)
    ? { path: bin }
    : { reason: `no llama-server binary: set STEADYTEXT_TEST_LLAMA_SERVER or run \`bash .ci/llama-server.sh\` (it caches ${bin})` };
}


const ROLE_FLAGS: Record<ModelRole, string[]> = {
  generation: [],
  // One slot: with several, texts decoded in one batch get other vectors than
  // alone (measured up to 0.21 per component on the tiny model; docs/engine.md).
  embedding: ['--embedding', '-np', '1'],
  reranking: ['--rerank'],
};

/** A llama-server process serving one tiny model (or `modelFile`); restartable on the same port. */
export class LlamaServer {
  private child?: ChildProcess;
  private log = '';
  readonly url: string;

  constructor(
    readonly bin: string,
    readonly role: ModelRole,
    readonly port: number,
    readonly extraArgs: string[] = [],
    readonly modelFile?: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(bin: string, role: ModelRole, extraArgs: string[] = [], modelFile?: string): Promise<LlamaServer> {
    const s = new LlamaServer(bin, role, await freePort(), extraArgs, modelFile);
    await s.start();
    return s;
  }

  get modelPath(): string {
    return this.modelFile ?? ensureTinyModel(this.role, TINY_DIR);
  }

  /** Starts the process and resolves once /health answers 200. */
  async start(): Promise<void> {
    const args = ['-m', this.modelPath, '--host', '127.0.0.1', '--port', String(this.port), '-t', '1', '-c', '2048', '-np', '4', '--no-webui', ...ROLE_FLAGS[this.role], ...this.extraArgs];
    this.log = '';
    const child = spawn(this.bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LD_LIBRARY_PATH: path.dirname(this.bin) } });
    this.child = child;
    const keep = (b: Buffer) => (this.log = (this.log + b.toString()).slice(-4000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const end = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`llama-server (${this.role}) exited during start:\n${this.log}`);
      }
      const ok = await fetch(`${this.url}/health`).then((r) => r.status === 200, () => false);
      if (ok) return;
      if (Date.now() > end) throw new Error(`llama-server (${this.role}) not healthy after 120 s:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGKILL, and wait until the process is gone. */
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }

  backend(overrides: Partial<HttpBackend> = {}): HttpBackend {
    return { url: this.url, dialect: 'llama-server', timeoutMs: 60_000, maxInFlight: 4, retries: 2, retryBackoffMs: 50, embedBatchSize: 64, ...overrides };
  }
}

/** What the proxy does with the next requests; the default forwards. */
export type ProxyAction =
  | { kind: 'status'; status: number; body: string; headers?: Record<string, string> }
  /** Holds the request until release() (then forwards it). */
  | { kind: 'hold' }
  /** Forwards it (what an empty script does; lets a script fault a later request). */
  | { kind: 'forward' };

/** An HTTP proxy in front of one server, scripting faults per request. */
export class FaultProxy {
  readonly requests: Array<{ method: string; path: string; body: string }> = [];
  /** Consumed one per request, in order; empty: forward. */
  readonly script: ProxyAction[] = [];
  /** Consulted for every request before the script: an action for requests of a given content (undefined: the script's turn). */
  answer?: (req: { method: string; path: string; body: string }) => ProxyAction | undefined;
  /** Requests whose client went away before they were answered. */
  aborted = 0;
  private held: Array<() => void> = [];
  private server?: http.Server;
  url = '';

  constructor(public target: string) {}

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** Forwards every request that is being held. */
  release(): void {
    const h = this.held;
    this.held = [];
    for (const go of h) go();
  }

  get holding(): number {
    return this.held.length;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    this.requests.push({ method: req.method!, path: req.url!, body });
    let clientGone = false;
    res.on('close', () => {
      if (!res.writableEnded) {
        clientGone = true;
        this.aborted++;
      }
    });
    const action = this.answer?.({ method: req.method!, path: req.url!, body }) ?? this.script.shift();
    if (action?.kind === 'status') {
      res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
      res.end(action.body);
      return;
    }
    if (action?.kind === 'hold') {
      await new Promise<void>((r) => this.held.push(r));
      if (clientGone) return;
    }
    try {
      const up = await fetch(this.target + req.url, {
        method: req.method,
        headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
        body: req.method === 'GET' ? undefined : body,
      });
      const text = await up.text();
      res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' });
      res.end(text);
    } catch {
      // The server is gone: drop the connection as the server itself would have.
      res.socket?.destroy();
    }
  }

  async stop(): Promise<void> {
    this.release();
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }
}

/** The constraints both llama-server suites send through the server and the local engine. */
export const CONSTRAINED = {
  regex: '[a-z]{3}-[0-9]{2}',
  choices: ['positive', 'negative', 'neutral'],
  schema: {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 6 }, ok: { type: 'boolean' } },
    required: ['name', 'ok'],
    additionalProperties: false,
  },
};

/**
 * Regex-, choice- and JSON-constrained generation of each prompt on `server`
 * (asserted valid) and on `local` (same GGUF), with seed 42 + the prompt's
 * index: how many outputs are identical, and which differ.
 */
export async function compareConstrained(server: Engine, local: Engine, prompts: readonly string[]) {
  let same = 0;
  let total = 0;
  const differing: string[] = [];
  const compare = (a: unknown, b: unknown) => {
    total++;
    if (JSON.stringify(a) === JSON.stringify(b)) same++;
    else differing.push(`${JSON.stringify(a)} (server) vs ${JSON.stringify(b)} (local)`);
  };
  const { regex, choices, schema } = CONSTRAINED;
  for (const [i, prompt] of prompts.entries()) {
    const o = { maxTokens: 24, seed: 42 + i };
    const r = await server.generateRegex(prompt, regex, o);
    assert.match(r, /^[a-z]{3}-[0-9]{2}$/);
    compare(r, await local.generateRegex(prompt, regex, o));
    const c = await server.generateChoice(prompt, choices, o);
    assert.ok(choices.includes(c));
    compare(c, await local.generateChoice(prompt, choices, o));
    const json = { maxTokens: 64, seed: 42 + i };
    const j = (await server.generateJson(prompt, schema, json)) as { name: string; ok: boolean };
    assert.equal(typeof j.name, 'string');
    assert.ok(j.name.length <= 6);
    assert.equal(typeof j.ok, 'boolean');
    compare(j, await local.generateJson(prompt, schema, json));
  }
  return { same, total, differing };
}

/** Fault proxies a suite starts in front of its servers; `stopAll()` (its after hook) stops every one. */
export function proxyPool() {
  const started: FaultProxy[] = [];
  return {
    async proxy(target: LlamaServer): Promise<FaultProxy> {
      const p = new FaultProxy(target.url);
      await p.start();
      started.push(p);
      return p;
    },
    async stopAll(): Promise<void> {
      for (const p of started) await p.stop();
    },
  };
}
