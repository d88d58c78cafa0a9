// Spawns benchmark worker processes (node --import tsx <script>) with an IPC channel.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';

export interface Proc {
  child: ChildProcess;
  messages: EventEmitter;
  /** stderr/stdout collected (for errors). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it exited. */
  stop(graceMs?: number): Promise<void>;
}

export function spawnTs(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, ...env },
  });
  const messages = new EventEmitter();
  messages.setMaxListeners(0);
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString();
    if (out.length > 20_000) out = out.slice(-10_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.on('message', (m) => messages.emit('message', m));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    messages,
    output: () => out,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}
