import { describe, expect, it } from "vitest";
import { gradCheck } from "../../src/tensor/gradcheck.js";
import { attentionPool, multiHeadAttention } from "../../src/tensor/ops/attention.js";
import { hardSigmoid, sigmoid, tanh } from "../../src/tensor/ops/elementwise.js";
import { gru, gruPacked } from "../../src/tensor/ops/gru.js";
import { Rng } from "../../src/tensor/rng.js";
import { noGrad } from "../../src/tensor/tape.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { randTensor, seeded } from "./helpers.js";

function expectGrads(f: (xs: Tensor[]) => Tensor, inputs: Tensor[], opts = {}): void {
  const r = gradCheck(f, inputs, opts);
  expect(r.mismatches, JSON.stringify(r.mismatches)).toEqual([]);
  expect(r.checked).toBeGreaterThan(0);
}

/** Float64 reference attention: masks by -∞ per (b, h, t) exactly as described in the op. */
function referenceAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  heads: number,
  causal: boolean,
  keyStart: Int32Array,
): Float64Array {
  const [B, L, W] = q.shape as [number, number, number];
  const d = W / heads;
  const out = new Float64Array(B * L * W);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < heads; h++)
      for (let t = keyStart[b]!; t < L; t++) {
        const visible: number[] = [];
        for (let j = keyStart[b]!; j < L; j++) if (!causal || j <= t) visible.push(j);
        const s = visible.map((j) => {
          let acc = 0;
          for (let i = 0; i < d; i++)
            acc += q.data[(b * L + t) * W + h * d + i]! * k.data[(b * L + j) * W + h * d + i]!;
          return acc / Math.sqrt(d);
        });
        const m = Math.max(...s);
        const e = s.map((x) => Math.exp(x - m));
        const z = e.reduce((x, y) => x + y, 0);
        visible.forEach((j, n) => {
          for (let i = 0; i < d; i++)
            out[(b * L + t) * W + h * d + i] += (e[n]! / z) * v.data[(b * L + j) * W + h * d + i]!;
        });
      }
  return out;
}

describe("multiHeadAttention", () => {
  const rng = seeded(3);
  const keyStart = Int32Array.of(0, 2, 5);
  for (const causal of [true, false]) {
    it(`matches a float64 reference (${causal ? "causal" : "bidirectional"}, left padding)`, () => {
      const [q, k, v] = [0, 1, 2].map(() => randTensor(rng, [3, 6, 8])) as [Tensor, Tensor, Tensor];
      const got = noGrad(() => multiHeadAttention(q, k, v, { heads: 2, causal, keyStart }));
      const want = referenceAttention(q, k, v, 2, causal, keyStart);
      for (let i = 0; i < want.length; i++) expect(got.data[i]).toBeCloseTo(want[i]!, 5);
      // A padded query row is exactly zero; the last sequence has 5 padding rows.
      expect([...got.data.subarray(2 * 6 * 8, 2 * 6 * 8 + 5 * 8)].every((x) => x === 0)).toBe(true);
    });
    it(`gradients (${causal ? "causal" : "bidirectional"}, padding, no dropout)`, () => {
      const inputs = [0, 1, 2].map(() => randTensor(rng, [3, 6, 8]));
      expectGrads(([q, k, v]) => multiHeadAttention(q!, k!, v!, { heads: 2, causal, keyStart }), inputs);
    });
    it(`gradients with attention dropout (${causal ? "causal" : "bidirectional"})`, () => {
      const inputs = [0, 1, 2].map(() => randTensor(rng, [2, 5, 6]));
      expectGrads(
        ([q, k, v]) =>
          multiHeadAttention(q!, k!, v!, {
            heads: 3,
            causal,
            keyStart: Int32Array.of(1, 0),
            dropout: 0.3,
            rng: new Rng(11), // reseeded: f must be deterministic
          }),
        inputs,
      );
    });
  }
  it("causal blocks of any size give the same result and gradients (blocks of 1, 2, 4 rows)", () => {
    const [q, k, v] = [0, 1, 2].map(() => randTensor(rng, [3, 7, 8])) as [Tensor, Tensor, Tensor];
    const ks = Int32Array.of(0, 2, 7);
    const want = referenceAttention(q, k, v, 2, true, ks);
    for (const blockRows of [1, 2, 4]) {
      const got = noGrad(() =>
        multiHeadAttention(q, k, v, { heads: 2, causal: true, keyStart: ks, blockRows }),
      );
      for (let i = 0; i < want.length; i++) expect(got.data[i]).toBeCloseTo(want[i]!, 5);
      expectGrads(
        ([a, b, c]) =>
          multiHeadAttention(a!, b!, c!, {
            heads: 2,
            causal: true,
            keyStart: ks,
            blockRows,
            dropout: 0.25,
            rng: new Rng(5),
          }),
        [q, k, v],
      );
    }
  });
  it("packed sequences (offsets) give the padded layout's rows; gradients", () => {
    const [q, k, v] = [0, 1, 2].map(() => randTensor(rng, [3, 6, 8])) as [Tensor, Tensor, Tensor];
    const ks = Int32Array.of(0, 2, 5);
    // Packed: sequence b keeps rows from max(ks[b] − 1, 0) on, the first of them padding (keyStart 1).
    const first = [0, 1, 4];
    const offsets = Int32Array.of(0, 6, 11, 13);
    const rows = first.flatMap((f, b) => Array.from({ length: 6 - f }, (_, i) => b * 6 + f + i));
    const pack = (t: Tensor) => {
      const out = new Float32Array(rows.length * 8);
      rows.forEach((r, i) => {
        out.set(t.data.subarray(r * 8, r * 8 + 8), i * 8);
      });
      return new Tensor(out, [rows.length, 8]);
    };
    const packedStart = Int32Array.of(0, 1, 1);
    for (const causal of [true, false]) {
      const want = noGrad(() => multiHeadAttention(q, k, v, { heads: 2, causal, keyStart: ks }));
      const got = noGrad(() =>
        multiHeadAttention(pack(q), pack(k), pack(v), { heads: 2, causal, offsets, keyStart: packedStart }),
      );
      rows.forEach((r, i) => {
        for (let j = 0; j < 8; j++) expect(got.data[i * 8 + j]).toBeCloseTo(want.data[r * 8 + j]!, 6);
      });
      expectGrads(
        ([a, b, c]) =>
          multiHeadAttention(a!, b!, c!, { heads: 2, causal, offsets, keyStart: packedStart, blockRows: 2 }),
        [pack(q), pack(k), pack(v)],
      );
    }
  });
  it("dropout changes the output and zero dropout is the identity on the weights", () => {
    const [q, k, v] = [0, 1, 2].map(() => randTensor(rng, [1, 4, 4])) as [Tensor, Tensor, Tensor];
    const a = noGrad(() => multiHeadAttention(q, k, v, { heads: 1, causal: false }));
    const b = noGrad(() =>
      multiHeadAttention(q, k, v, { heads: 1, causal: false, dropout: 0.5, rng: new Rng(1) }),
    );
    expect([...a.data]).not.toEqual([...b.data]);
  });
  it("rejects bad shapes and masks", () => {
    const x = randTensor(rng, [2, 3, 4]);
    expect(() => multiHeadAttention(x, x, x, { heads: 3, causal: true })).toThrow(/divisible/);
    expect(() =>
      multiHeadAttention(x, x, x, { heads: 2, causal: true, keyStart: Int32Array.of(0, 4) }),
    ).toThrow(/keyStart/);
    expect(() => multiHeadAttention(x, x, x, { heads: 2, causal: true, dropout: 0.1 })).toThrow(/rng/);
  });
});

describe("attentionPool", () => {
  const rng = seeded(5);
  it("gradients over ragged segments (one empty)", () => {
    const offsets = Int32Array.of(0, 3, 3, 7);
    expectGrads(
      ([s, x]) => attentionPool(s!, x!, offsets),
      [randTensor(rng, [7, 1]), randTensor(rng, [7, 4])],
    );
  });
  it("is a softmax-weighted mean per segment", () => {
    const s = Tensor.from([0, Math.log(3), 5]);
    const x = Tensor.from([1, 2, 3], [3, 1]);
    const y = noGrad(() => attentionPool(s, x, Int32Array.of(0, 2, 3)));
    expect(y.data[0]).toBeCloseTo(0.25 * 1 + 0.75 * 2, 6);
    expect(y.data[1]).toBeCloseTo(3, 6);
  });
});

describe("gates", () => {
  const rng = seeded(9);
  it("tanh, sigmoid, hardSigmoid gradients", () => {
    expectGrads(([a]) => tanh(a!), [randTensor(rng, [7], -3, 3)]);
    expectGrads(([a]) => sigmoid(a!), [randTensor(rng, [7], -4, 4)]);
    // Away from the kinks at ±3.
    const x = Tensor.from([-5, -2.5, -1, 0.3, 2, 2.9, 4.2]);
    expectGrads(([a]) => hardSigmoid(a!), [x]);
    expect([...noGrad(() => hardSigmoid(Tensor.from([-4, 0, 1.5, 9]))).data]).toEqual([0, 0.5, 0.75, 1]);
  });
});

/** Float64 torch.nn.GRU (gate order r, z, n) over positions start..L−1 of one sequence. */
function referenceGru(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array,
  H: number,
  L: number,
  start: number,
) {
  const h = new Float64Array(H);
  const out = new Float64Array(L * H);
  for (let t = start; t < L; t++) {
    const gh = new Float64Array(3 * H);
    for (let o = 0; o < 3 * H; o++) {
      let acc = bias[o]!;
      for (let i = 0; i < H; i++) acc += w[o * H + i]! * h[i]!;
      gh[o] = acc;
    }
    const next = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      const xo = t * 3 * H;
      const r = 1 / (1 + Math.exp(-(x[xo + j]! + gh[j]!)));
      const z = 1 / (1 + Math.exp(-(x[xo + H + j]! + gh[H + j]!)));
      const n = Math.tanh(x[xo + 2 * H + j]! + r * gh[2 * H + j]!);
      next[j] = (1 - z) * n + z * h[j]!;
    }
    h.set(next);
    out.set(next, t * H);
  }
  return out;
}

describe("gru", () => {
  const rng = seeded(13);
  const H = 3;
  const L = 5;
  const start = Int32Array.of(0, 3, 1, 5);
  it("matches a float64 reference per sequence, with zeros over padding", () => {
    const x = randTensor(rng, [4, L, 3 * H]);
    const w = randTensor(rng, [3 * H, H]);
    const b = randTensor(rng, [3 * H]);
    const y = noGrad(() => gru(x, w, b, start));
    for (let s = 0; s < 4; s++) {
      const want = referenceGru(x.data.subarray(s * L * 3 * H), w.data, b.data, H, L, start[s]!);
      for (let i = 0; i < L * H; i++) expect(y.data[s * L * H + i]).toBeCloseTo(want[i]!, 5);
    }
  });
  it("gradients through time (input projection, recurrent weight and bias)", () => {
    expectGrads(
      ([x, w, b]) => gru(x!, w!, b!, start),
      [randTensor(rng, [4, L, 3 * H]), randTensor(rng, [3 * H, H]), randTensor(rng, [3 * H])],
    );
  });
  it("packed sequences give the padded layout's states; gradients", () => {
    const x = randTensor(rng, [4, L, 3 * H]);
    const w = randTensor(rng, [3 * H, H]);
    const b = randTensor(rng, [3 * H]);
    const rows = [...start].flatMap((s, q) => Array.from({ length: L - s }, (_, i) => q * L + s + i));
    const offsets = Int32Array.of(0, 5, 7, 11, 11);
    const xp = new Tensor(new Float32Array(rows.length * 3 * H), [rows.length, 3 * H]);
    rows.forEach((r, i) => {
      xp.data.set(x.data.subarray(r * 3 * H, (r + 1) * 3 * H), i * 3 * H);
    });
    const want = noGrad(() => gru(x, w, b, start));
    const got = noGrad(() => gruPacked(xp, w, b, offsets));
    rows.forEach((r, i) => {
      for (let j = 0; j < H; j++) expect(got.data[i * H + j]).toBe(want.data[r * H + j]);
    });
    expectGrads(([a, c, d]) => gruPacked(a!, c!, d!, offsets), [xp, w, b]);
  });
  it("without a recurrent bias", () => {
    expectGrads(
      ([x, w]) => gru(x!, w!, null, Int32Array.of(2, 0)),
      [randTensor(rng, [2, 4, 6]), randTensor(rng, [6, 2])],
    );
  });
});
