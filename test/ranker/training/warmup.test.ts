/** Issue 7 §4: the 100-step warmup is scaled to short runs, so `train ranker --steps 5` trains. */
import { describe, expect, it } from "vitest";
import { effectiveWarmup, linearWarmupLr } from "../../../src/ranker/training/trainer.js";

describe("effectiveWarmup", () => {
  it("keeps the official 100 steps on a full epoch and takes at most a tenth of a short run", () => {
    expect(effectiveWarmup(100, 5528)).toBe(100);
    expect(effectiveWarmup(100, 40)).toBe(4);
    expect(effectiveWarmup(100, 5)).toBe(0);
    // --steps 5: every step runs near the peak lr instead of at most 4e-6.
    const lrs = [0, 1, 2, 3, 4].map((s) => linearWarmupLr(1e-4, s, effectiveWarmup(100, 5), 5));
    expect(lrs[0]).toBe(1e-4);
    expect(Math.min(...lrs)).toBeGreaterThan(1e-5);
  });
});
