// The method behind every ratio the bench checks against a target: the two
// sides are measured in turns (A B, B A, A B, ...), each run long enough to
// outlast a scheduling hiccup, the ratio is taken per pair (so both sides of
// a pair saw about the same machine), and what is reported is the median of
// those ratios with their spread. On a shared machine the load moves between
// pairs, not within one; a single ratio of two runs minutes apart moved by
// 3x here (issue 23 item 17).
import { round } from './stats.ts';

/** Median and spread of per-pair figures. */
export interface Spread {
  n: number;
  median: number;
  min: number;
  max: number;
  /** Quartiles (linear interpolation; with 5 pairs, the 2nd and 4th values). */
  q1: number;
  q3: number;
  /** Every pair's figure, in run order. */
  values: number[];
}

/** ✓ every pair meets the target, ✗ none does, 'within noise': the spread (min–max) straddles it. */
export type Verdict = 'met' | 'missed' | 'within noise';

export function spread(values: number[], digits = 3): Spread {
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number) => {
    const i = p * (s.length - 1);
    const lo = Math.floor(i);
    return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (i - lo);
  };
  return {
    n: s.length,
    median: round(at(0.5), digits),
    min: round(s[0], digits),
    max: round(s[s.length - 1], digits),
    q1: round(at(0.25), digits),
    q3: round(at(0.75), digits),
    values: values.map((v) => round(v, digits)),
  };
}

/**
 * Whether a figure holds: judged on every pair, not on the median, so a
 * target counts as met or missed only where no pair says otherwise.
 */
export function verdict(s: Spread, ok: (v: number) => boolean): Verdict {
  const good = s.values.filter(ok).length;
  return good === s.n ? 'met' : good === 0 ? 'missed' : 'within noise';
}

/**
 * Runs `sides` in turns, `rounds` times; round r starts at side r mod n
 * (two sides: A B, B A, A B, ...), so neither side always runs first, on a
 * warmer or a colder machine. Each run does `size` items. A round whose
 * shortest run lasted under `minSeconds` (the machine got faster than the
 * estimate that sized it) is run again with the size grown to match, up to
 * 3 times, so every counted run lasts at least that long; `redone` counts the
 * rounds run again (they are not counted: the rule looks at durations, never
 * at the ratio). Returns each side's results in round order and the size the
 * last round ran at.
 */
export async function interleave<S extends string, T extends { seconds: number }>(
  rounds: number,
  sides: readonly S[],
  size: number,
  minSeconds: number,
  run: (side: S, round: number, size: number) => Promise<T>,
  grow: (size: number, factor: number) => number,
): Promise<{ results: Record<S, T[]>; size: number; redone: number }> {
  const results = Object.fromEntries(sides.map((s) => [s, [] as T[]])) as Record<S, T[]>;
  let redone = 0;
  for (let r = 0; r < rounds; r++) {
    for (let attempt = 0; ; attempt++) {
      const round: [S, T][] = [];
      for (let i = 0; i < sides.length; i++) {
        const side = sides[(i + r) % sides.length];
        round.push([side, await run(side, r, size)]);
      }
      const shortest = Math.min(...round.map(([, t]) => t.seconds));
      if (shortest < minSeconds && attempt < 3) {
        size = grow(size, (minSeconds * 1.25) / Math.max(shortest, 1e-3));
        redone++;
        continue;
      }
      for (const [side, t] of round) results[side].push(t);
      break;
    }
  }
  return { results, size, redone };
}

/**
 * How many items make a run of at least `seconds`, from a measured rate
 * (items/s), rounded up to a multiple of `step` (the width, so every engine
 * call of the direct loop is full).
 */
export function sizeFor(rate: number, seconds: number, step = 1, least = step): number {
  const n = Math.max(least, Math.ceil((rate * seconds) / step) * step);
  return Math.ceil(n / step) * step;
}
