import { describe, expect, it } from "vitest";
import { Rng } from "../../src/tensor/rng.js";
import { erf, erfinv } from "../../src/tensor/special.js";

describe("Rng", () => {
  it("is deterministic by seed and differs across seeds", () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 5 }, () => a.nextUint32());
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(sa);
    expect(Array.from({ length: 5 }, () => c.nextUint32())).not.toEqual(sa);
  });

  it("restores its state", () => {
    const a = new Rng(1);
    a.uniform();
    const s = a.getState();
    const x = a.uniform();
    a.setState(s);
    expect(a.uniform()).toBe(x);
  });

  it("applyDropout draws 16 bits per element (two per nextUint32) and keeps those ≥ round(p·2¹⁶)", () => {
    const a = new Rng(9);
    const b = new Rng(9);
    const src = Float32Array.from({ length: 1001 }, (_, i) => i + 1);
    const dst = new Float32Array(1001);
    a.applyDropout(src, dst, 0.3, false);
    const threshold = Math.round(0.3 * 65536);
    for (let i = 0; i < 1001; i += 2) {
      const r = b.nextUint32();
      const halves = [r & 0xffff, r >>> 16];
      for (let k = 0; k < 2 && i + k < 1001; k++) {
        const keep = halves[k]! >= threshold;
        expect(dst[i + k]).toBeCloseTo(keep ? (i + k + 1) / 0.7 : 0, 3);
      }
    }
    expect(a.nextUint32()).toBe(b.nextUint32());
    const acc = new Float32Array(1001).fill(1);
    b.setState(new Rng(9).getState());
    b.applyDropout(src, acc, 0.3, true);
    acc.forEach((v, i) => {
      expect(v).toBeCloseTo(1 + dst[i]!, 3);
    });
  });

  it("uniform and normal have the right moments", () => {
    const r = new Rng(3);
    const n = 200_000;
    let su = 0;
    let sn = 0;
    let sn2 = 0;
    let outOfRange = 0;
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      if (!(u >= 0 && u < 1)) outOfRange++;
      su += u;
      const z = r.normal();
      sn += z;
      sn2 += z * z;
    }
    expect(outOfRange).toBe(0);
    expect(su / n).toBeCloseTo(0.5, 2);
    expect(sn / n).toBeCloseTo(0, 2);
    expect(sn2 / n).toBeCloseTo(1, 1);
  });

  it("truncatedNormal(0.02, ±0.04) stays in bounds with the truncated-normal std", () => {
    const r = new Rng(5);
    const xs = r.fillTruncatedNormal(new Float32Array(100_000), 0.02, -0.04, 0.04);
    let s2 = 0;
    let maxAbs = 0;
    for (const x of xs) {
      maxAbs = Math.max(maxAbs, Math.abs(x));
      s2 += x * x;
    }
    expect(maxAbs).toBeLessThanOrEqual(0.04);
    expect(maxAbs).toBeGreaterThan(0.039);
    // std of N(0, σ²) truncated at ±2σ: σ·sqrt(1 − 2·2φ(2)/(2Φ(2)−1)) = 0.8796σ.
    const phi2 = Math.exp(-2) / Math.sqrt(2 * Math.PI);
    const want = 0.02 * Math.sqrt(1 - (4 * phi2) / erf(2 / Math.SQRT2));
    expect(Math.abs(Math.sqrt(s2 / xs.length) / want - 1)).toBeLessThan(0.01);
  });
});

describe("erf / erfinv", () => {
  it("erf matches known values and erfinv inverts it", () => {
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf(3)).toBeCloseTo(0.9999779095030014, 14);
    for (const x of [-2.5, -1, -0.1, 0, 0.3, 1.7, 3]) expect(erfinv(erf(x))).toBeCloseTo(x, 9);
  });
});
