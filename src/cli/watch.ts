// `--watch [seconds]` of `steadytext status` and `steadytext pipelines`:
// redraw in place on a terminal, else append each refresh, until Ctrl-C (exit 0).
import { exitCodes, fail } from './exit.ts';

/** The refresh interval --watch asks for: 0 without it, 2 with no number; a usage error for anything but seconds > 0. */
export function watchSeconds(watch: string | true | undefined): number {
  if (watch === undefined) return 0;
  const every = watch === true ? 2 : Number(watch);
  if (!(every > 0)) fail(`--watch takes a number of seconds > 0, got ${String(watch)}`, exitCodes.usage);
  return every;
}

/**
 * Prints `render()` every `every` seconds for ever (SIGINT/SIGTERM exit 0):
 * on a terminal (and not `json`) it redraws in place under a hidden cursor,
 * else each refresh is appended (`json`: one line each).
 */
export async function watchLoop(render: () => Promise<string>, every: number, json: boolean): Promise<never> {
  const tty = process.stdout.isTTY === true && !json;
  const stop = () => {
    if (tty) process.stdout.write('\x1b[?25h'); // cursor back
    process.exit(exitCodes.ok);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (tty) process.stdout.write('\x1b[?25l'); // hide cursor while redrawing
  for (;;) {
    const out = await render();
    if (tty) {
      // Home, draw, clear whatever the previous frame left below.
      process.stdout.write(`\x1b[H\x1b[2J${out}\nrefreshing every ${every} s — Ctrl-C to stop (${new Date().toLocaleTimeString()})\n`);
    } else {
      process.stdout.write(json ? out : out + '\n');
    }
    await new Promise((r) => setTimeout(r, every * 1000));
  }
}
