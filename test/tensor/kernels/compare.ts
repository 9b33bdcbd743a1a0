// Shared helpers for comparing the wasm backend against the reference oracle.
import { expect } from "vitest";

/** Seeded xorshift32 uniform in [lo, hi). */
export function rng(seed: number): (lo?: number, hi?: number) => number {
  let s = seed >>> 0 || 1;
  return (lo = -1, hi = 1) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return lo + ((s >>> 0) / 4294967296) * (hi - lo);
  };
}

export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r(lo, hi));
}

/** max |a − b| / max(|b|, floor): a relative error that is meaningful even where single entries are ≈ 0. */
export function relError(actual: ArrayLike<number>, expected: ArrayLike<number>, floor = 1e-6): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let scale = floor;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (Number.isNaN(d)) return Number.POSITIVE_INFINITY;
    diff = Math.max(diff, d);
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / scale;
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-4): void {
  expect(relError(actual, expected)).toBeLessThan(tol);
}
