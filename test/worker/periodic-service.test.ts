// The base of the worker's periodic services (src/worker/services/
// periodicService.ts) alone: one run at a time, runNow, stop, failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeriodicService } from '../../src/worker/services/periodicService.ts';

/** Runs that wait until the test lets them end. */
class Gated extends PeriodicService<number> {
  readonly name = 'gated';
  started = 0;
  private gates: (() => void)[] = [];
  fail = false;

  protected async runOnce(): Promise<number> {
    const n = ++this.started;
    await new Promise<void>((resolve) => this.gates.push(resolve));
    if (this.fail) throw new Error('boom');
    return n;
  }

  /** Lets the run in flight end. */
  open(): void {
    this.gates.shift()?.();
  }
}

const until = async (what: () => boolean) => {
  for (let i = 0; i < 500 && !what(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(what());
};

test('ticks never overlap a run in flight; stop waits for it and ends the ticks', async () => {
  const runs: number[] = [];
  const s = new Gated({ intervalMs: 5, log: () => {}, onRun: (n) => runs.push(n) });
  s.start();
  await until(() => s.started === 1);
  await new Promise((r) => setTimeout(r, 30)); // several ticks while the run is in flight
  assert.equal(s.started, 1);
  let stopped = false;
  const stopping = s.stop().then(() => (stopped = true));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(stopped, false, 'stop waits for the run in flight');
  s.open();
  await stopping;
  assert.deepEqual(runs, [1]);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(s.started, 1, 'no run after stop');
  assert.equal(await s.runNow(), undefined, 'runNow after stop runs nothing');
});

test('runNow runs after the run in flight, and resolves with its own result', async () => {
  const s = new Gated({ intervalMs: 60_000, log: () => {} });
  const first = s.runNow();
  await until(() => s.started === 1);
  const second = s.runNow();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(s.started, 1, 'the second waits for the first');
  s.open();
  assert.equal(await first, 1);
  await until(() => s.started === 2);
  s.open();
  assert.equal(await second, 2);
  await s.stop();
});

test('a failed run is logged as "<name> failed: ..." and reports no result', async () => {
  const lines: string[] = [];
  const runs: number[] = [];
  const s = new Gated({ intervalMs: 60_000, log: (l) => lines.push(l), onRun: (n) => runs.push(n) });
  s.fail = true;
  const run = s.runNow();
  await until(() => s.started === 1);
  s.open();
  assert.equal(await run, undefined);
  assert.deepEqual(lines, ['gated failed: boom']);
  assert.deepEqual(runs, []);
  assert.throws(() => new Gated({ intervalMs: 0, log: () => {} }), RangeError);
});
