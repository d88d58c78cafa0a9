// Shared by the engine tests: the tiny model set in one cache dir per machine
// (ensureTinyModel rewrites a file only when its bytes differ).
import os from 'node:os';
import path from 'node:path';
import { loadEngine, type Engine } from '../../src/engine/index.ts';

export const TINY_DIR = process.env.STEADYTEXT_TEST_MODEL_DIR ?? path.join(os.tmpdir(), 'steadytext-tiny-models');

export function tinyEngine(opts: { parallel?: number; contexts?: number } = {}): Promise<Engine> {
  return loadEngine({ models: 'tiny', modelDir: TINY_DIR, threads: 1, ...opts });
}

/** Deterministic PRNG for generating test cases. */
export function rng(seed: number): { next: () => number; int: (lo: number, hi: number) => number; pick: <T>(xs: readonly T[]) => T } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  return { next, int, pick: (xs) => xs[int(0, xs.length - 1)] };
}
