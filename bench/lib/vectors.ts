// The vector the no-op engine answers every embedding with when
// BENCH_EMBED_DIMENSIONS is set (bench/noopEngine.ts), and its text forms, so
// the backfill scenario's baselines write exactly the bytes the engine's
// results carry. Pseudo-random float32 values (mulberry32, a fixed seed),
// L2-normalised like a real embedding: a real model's vector has the same
// text length (about 20 characters a value) and does not compress, where
// [1, 0, 0, ...] would shrink to almost nothing in TOAST and in the WAL.
export function benchVector(dimensions: number): number[] {
  let a = 0x5eed;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const raw = Array.from({ length: dimensions }, () => next() * 2 - 1);
  const norm = Math.sqrt(raw.reduce((s, x) => s + x * x, 0)) || 1;
  // float32, as llama.cpp hands them out (a double prints ~17 digits either way)
  return raw.map((x) => Math.fround(x / norm));
}

/** PostgreSQL's array literal of a vector: `{0.1,...}` (a `real[]` input). */
export const arrayLiteral = (v: number[]) => `{${v.join(',')}}`;
