import { describe, expect, it } from "vitest";
import { LruRec } from "../../src/retrievers/lru.js";
import { LruIncremental } from "../../src/retrievers/lru-state.js";
import { Rng } from "../../src/tensor/rng.js";

/** A model whose scores differ clearly between histories: weights far from the tiny official init. */
function spreadModel(numItems: number, hiddenDim: number, numBlocks: number): LruRec {
  const model = new LruRec({ numItems, hiddenDim, numBlocks, seed: 7 });
  const rng = new Rng(11);
  for (const [name, p] of model.namedParameters()) {
    if (name.includes("params_log")) continue;
    const base = name.includes("layer_norm") && name.endsWith("weight") ? 1 : 0;
    for (let i = 0; i < p.data.length; i++) p.data[i] = base + 0.4 * rng.normal();
  }
  model.setTraining(false);
  return model;
}

function fullScores(model: LruRec, history: number[]): Float32Array {
  return model.scoreNext(Int32Array.from(history), 1, history.length);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 1; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function spread(a: ArrayLike<number>): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 1; i < a.length; i++) {
    lo = Math.min(lo, a[i]!);
    hi = Math.max(hi, a[i]!);
  }
  return hi - lo;
}

describe("incremental LRURec state", () => {
  const numItems = 50;
  const model = spreadModel(numItems, 16, 2);
  const inc = new LruIncremental(model);
  const rng = new Rng(3);
  const history = Array.from({ length: 300 }, () => 1 + rng.int(numItems));

  it("one step at a time equals the full forward pass after every event (1e-5)", () => {
    let state = inc.empty();
    let worst = 0;
    for (let t = 0; t < 70; t++) {
      state = inc.step(state, history[t]!);
      const expected = fullScores(model, history.slice(0, t + 1));
      const got = inc.scores([state]);
      expect(spread(expected)).toBeGreaterThan(1); // scores really depend on the history
      worst = Math.max(worst, maxAbsDiff(got, expected));
    }
    expect(worst).toBeLessThan(1e-5);
  });

  it("a state rebuilt from the stored history equals the incremental one, beyond the power-of-two padding", () => {
    for (const n of [1, 2, 3, 64, 65, 129, 300]) {
      const rebuilt = inc.fromHistory(history.slice(0, n));
      const stepped = inc.extend(inc.empty(), history.slice(0, n));
      expect(rebuilt.length).toBe(n);
      for (let l = 0; l < 2; l++) {
        expect(maxAbsDiff(rebuilt.recurrent[l]!, stepped.recurrent[l]!)).toBeLessThan(1e-5);
      }
      expect(maxAbsDiff(inc.scores([rebuilt]), fullScores(model, history.slice(0, n)))).toBeLessThan(1e-5);
      expect(maxAbsDiff(inc.scores([stepped]), fullScores(model, history.slice(0, n)))).toBeLessThan(1e-5);
    }
  });

  it("continuing a rebuilt state (after a restart) equals a full recompute", () => {
    const restored = inc.fromHistory(history.slice(0, 100));
    const continued = inc.extend(restored, history.slice(100, 120));
    expect(maxAbsDiff(inc.scores([continued]), fullScores(model, history.slice(0, 120)))).toBeLessThan(1e-5);
  });

  it("different histories give different states; batched scoring matches single", () => {
    const a = inc.fromHistory([1, 2, 3]);
    const b = inc.fromHistory([3, 2, 1]);
    const both = inc.scores([a, b]);
    const n = numItems + 1;
    // One state goes through the SIMD catalogue scorer, several through one GEMM: same values to rounding.
    expect(maxAbsDiff(both.subarray(0, n), inc.scores([a]))).toBeLessThan(1e-5);
    expect(maxAbsDiff(both.subarray(n), inc.scores([b]))).toBeLessThan(1e-5);
    expect(maxAbsDiff(inc.scores([a]), inc.scores([b]))).toBeGreaterThan(0.1);
  });

  it("rejects items outside the catalogue", () => {
    expect(() => inc.step(inc.empty(), 0)).toThrow(/outside 1\.\.50/);
    expect(() => inc.fromHistory([1, 51])).toThrow(/outside/);
  });
});
