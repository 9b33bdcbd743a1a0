import { describe, expect, it } from "vitest";
import { causalAttention } from "../../../src/llm/model/ops/attention.js";
import { RopeTable, rotary } from "../../../src/llm/model/ops/rotary.js";
import { swiglu } from "../../../src/llm/model/ops/swiglu.js";
import { gradCheck } from "../../../src/tensor/gradcheck.js";
import { rmsNorm } from "../../../src/tensor/ops/norm.js";
import { noGrad } from "../../../src/tensor/tape.js";
import { Tensor } from "../../../src/tensor/tensor.js";
import { maxAbsDiff, Rng, randn } from "./helpers.js";

/** Plain per-element causal GQA attention in float64: the oracle. */
function naiveAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  T: number,
  Tq: number,
  heads: number,
  kvHeads: number,
  d: number,
): Float32Array {
  const out = new Float32Array(Tq * heads * d);
  for (let t = 0; t < Tq; t++) {
    const pos = T - Tq + t;
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / (heads / kvHeads));
      const s: number[] = [];
      for (let j = 0; j <= pos; j++) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[t * heads * d + h * d + i]! * k[j * kvHeads * d + g * d + i]!;
        s.push(dot / Math.sqrt(d));
      }
      const max = Math.max(...s);
      const e = s.map((x) => Math.exp(x - max));
      const z = e.reduce((a, b) => a + b, 0);
      for (let i = 0; i < d; i++) {
        let acc = 0;
        for (let j = 0; j <= pos; j++) acc += (e[j]! / z) * v[j * kvHeads * d + g * d + i]!;
        out[t * heads * d + h * d + i] = acc;
      }
    }
  }
  return out;
}

describe("rotary", () => {
  const d = 8;
  const table = new RopeTable(Array.from({ length: d / 2 }, (_, i) => 10000 ** (-(2 * i) / d)));

  it("rotates HF halves: pair (x[i], x[i+d/2]) by pos·θ^(−2i/d)", () => {
    const x = Tensor.from([1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], [2, d]);
    const y = noGrad(() => rotary(x, 1, table)).data;
    // position 0: identity; position 1, frequency 0: angle 1 rad → (cos 1, …, sin 1 at i + d/2)
    expect(Array.from(y.slice(0, d))).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(y[d]).toBeCloseTo(Math.cos(1), 6);
    expect(y[d + d / 2]).toBeCloseTo(Math.sin(1), 6);
    expect(y[d + 1]).toBe(0);
  });

  it("makes q·k depend only on the position difference", () => {
    const rng = new Rng(1);
    const q = randn(rng, [1, d]);
    const k = randn(rng, [1, d]);
    const dotAt = (pq: number, pk: number) => {
      const a = noGrad(() => rotary(q, 1, table, pq)).data;
      const b = noGrad(() => rotary(k, 1, table, pk)).data;
      return a.reduce((s, x, i) => s + x * b[i]!, 0);
    };
    expect(dotAt(7, 3)).toBeCloseTo(dotAt(104, 100), 4);
    expect(Math.abs(dotAt(7, 3) - dotAt(7, 4))).toBeGreaterThan(1e-3);
  });

  it("has the gradient of finite differences", () => {
    const r = gradCheck(([x]) => rotary(x!, 2, table, 3), [randn(new Rng(2), [5, 2 * d])]);
    expect(r.mismatches).toEqual([]);
  });
});

describe("causalAttention", () => {
  const heads = 4;
  const kvHeads = 2;
  const d = 4;

  it("matches a naive GQA causal attention, across query blocks and for the last queries only", () => {
    const rng = new Rng(3);
    const T = 150; // > one 128-row block
    const q = randn(rng, [T, heads * d]);
    const k = randn(rng, [T, kvHeads * d]);
    const v = randn(rng, [T, kvHeads * d]);
    const out = noGrad(() => causalAttention(q, k, v, { heads, kvHeads, headDim: d }));
    expect(
      maxAbsDiff(out.data, naiveAttention(q.data, k.data, v.data, T, T, heads, kvHeads, d)),
    ).toBeLessThan(1e-5);
    const last = Tensor.from(q.data.slice((T - 3) * heads * d), [3, heads * d]);
    const out3 = noGrad(() => causalAttention(last, k, v, { heads, kvHeads, headDim: d }));
    expect(maxAbsDiff(out3.data, out.data.slice((T - 3) * heads * d))).toBeLessThan(1e-6);
  });

  it("never looks ahead: changing token 5 leaves outputs 0..4 unchanged", () => {
    const rng = new Rng(4);
    const q = randn(rng, [8, heads * d]);
    const k = randn(rng, [8, kvHeads * d]);
    const v = randn(rng, [8, kvHeads * d]);
    const a = noGrad(() => causalAttention(q, k, v, { heads, kvHeads, headDim: d })).data;
    for (let i = 5 * kvHeads * d; i < 6 * kvHeads * d; i++) {
      k.data[i] = k.data[i]! + 1;
      v.data[i] = v.data[i]! - 1;
    }
    const b = noGrad(() => causalAttention(q, k, v, { heads, kvHeads, headDim: d })).data;
    expect(maxAbsDiff(a.slice(0, 5 * heads * d), b.slice(0, 5 * heads * d))).toBe(0);
    expect(maxAbsDiff(a.slice(5 * heads * d), b.slice(5 * heads * d))).toBeGreaterThan(1e-3);
  });

  it("has the gradient of finite differences (GQA, causal mask), also with fewer queries", () => {
    const rng = new Rng(5);
    const T = 6;
    const inputs = [randn(rng, [T, heads * d]), randn(rng, [T, kvHeads * d]), randn(rng, [T, kvHeads * d])];
    const r = gradCheck(([q, k, v]) => causalAttention(q!, k!, v!, { heads, kvHeads, headDim: d }), inputs);
    expect(r.mismatches).toEqual([]);
    const partial = [randn(rng, [2, heads * d]), randn(rng, [T, kvHeads * d]), randn(rng, [T, kvHeads * d])];
    const r2 = gradCheck(([q, k, v]) => causalAttention(q!, k!, v!, { heads, kvHeads, headDim: d }), partial);
    expect(r2.mismatches).toEqual([]);
  });

  it("rejects inconsistent shapes", () => {
    const x = Tensor.zeros([3, 8]);
    expect(() => causalAttention(x, x, x, { heads: 4, kvHeads: 3, headDim: 2 })).toThrow(/divisible/);
    expect(() => causalAttention(x, Tensor.zeros([3, 4]), x, { heads: 2, kvHeads: 1, headDim: 4 })).toThrow(
      /widths/,
    );
  });
});

describe("swiglu and rmsNorm", () => {
  it("swiglu = silu(gate)·up with the gradient of finite differences", () => {
    const rng = new Rng(6);
    const gate = randn(rng, [3, 5], 2);
    const up = randn(rng, [3, 5]);
    const y = noGrad(() => swiglu(gate, up)).data;
    const g0 = gate.data[0]!;
    expect(y[0]).toBeCloseTo((g0 / (1 + Math.exp(-g0))) * up.data[0]!, 6);
    const r = gradCheck(([a, b]) => swiglu(a!, b!), [gate, up]);
    expect(r.mismatches).toEqual([]);
  });

  it("rmsNorm has the gradient of finite differences (input and weight)", () => {
    const rng = new Rng(7);
    const r = gradCheck(([x, w]) => rmsNorm(x!, w!, 1e-5), [randn(rng, [4, 6]), randn(rng, [6])]);
    expect(r.mismatches).toEqual([]);
  });
});
