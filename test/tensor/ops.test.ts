import { describe, expect, it } from "vitest";
import { gradCheck } from "../../src/tensor/gradcheck.js";
import {
  add,
  addScalar,
  concat,
  cos,
  dropout,
  embedding,
  exp,
  gelu,
  layerNorm,
  linear,
  linearCrossEntropy,
  log,
  logSoftmax,
  matmul,
  mean,
  meanAll,
  mul,
  reshape,
  rmsNorm,
  scale,
  sigmoid,
  silu,
  sin,
  slice,
  softmax,
  sqrt,
  sub,
  sum,
  sumAll,
  transpose,
} from "../../src/tensor/index.js";
import { Rng } from "../../src/tensor/rng.js";
import { erf } from "../../src/tensor/special.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { randTensor, seeded } from "./helpers.js";

function expectGrads(f: (xs: Tensor[]) => Tensor, inputs: Tensor[], opts = {}): void {
  const r = gradCheck(f, inputs, opts);
  expect(r.mismatches, JSON.stringify(r.mismatches)).toEqual([]);
  expect(r.ok).toBe(true);
  expect(r.checked).toBeGreaterThan(0);
}

describe("elementwise op gradients", () => {
  const rng = seeded(1);
  it("add/sub/mul with same shapes and trailing broadcast", () => {
    for (const bShape of [[2, 3, 4], [3, 4], [4]]) {
      expectGrads(([a, b]) => add(a!, b!), [randTensor(rng, [2, 3, 4]), randTensor(rng, bShape)]);
      expectGrads(([a, b]) => sub(a!, b!), [randTensor(rng, [2, 3, 4]), randTensor(rng, bShape)]);
      expectGrads(([a, b]) => mul(a!, b!), [randTensor(rng, [2, 3, 4]), randTensor(rng, bShape)]);
    }
  });
  it("rejects shapes that are not a trailing part", () => {
    expect(() => add(randTensor(rng, [2, 3]), randTensor(rng, [2]))).toThrow(/trailing/);
  });
  it("unary ops", () => {
    expectGrads(([a]) => scale(a!, -2.5), [randTensor(rng, [5])]);
    expectGrads(([a]) => addScalar(a!, 3), [randTensor(rng, [5])]);
    expectGrads(([a]) => exp(a!), [randTensor(rng, [6])]);
    expectGrads(([a]) => log(a!), [randTensor(rng, [6], 0.5, 2)]);
    expectGrads(([a]) => sqrt(a!), [randTensor(rng, [6], 0.5, 2)]);
    expectGrads(([a]) => sin(a!), [randTensor(rng, [6], -3, 3)]);
    expectGrads(([a]) => cos(a!), [randTensor(rng, [6], -3, 3)]);
    expectGrads(([a]) => silu(a!), [randTensor(rng, [6], -4, 4)]);
    expectGrads(([a]) => sigmoid(a!), [randTensor(rng, [6], -4, 4)]);
    expectGrads(([a]) => gelu(a!), [randTensor(rng, [8], -3, 3)]);
  });
  it("values of silu and gelu", () => {
    const x = randTensor(rng, [4], -2, 2);
    const s = silu(x).data;
    const g = gelu(x).data;
    for (let i = 0; i < 4; i++) {
      const v = x.data[i]!;
      expect(s[i]).toBeCloseTo(v / (1 + Math.exp(-v)), 6);
      expect(g[i]).toBeCloseTo(0.5 * v * (1 + erf(v / Math.SQRT2)), 6);
    }
    expect(gelu(Tensor1(1)).data[0]).toBeCloseTo(0.8413447460685429, 6);
  });
});

function Tensor1(v: number): Tensor {
  return randTensor(new Rng(0), [1], v, v);
}

describe("matmul and linear", () => {
  const rng = seeded(2);
  function naive(a: number[][], b: number[][]): number[][] {
    return a.map((row) => b[0]!.map((_, j) => row.reduce((s, v, k) => s + v * b[k]![j]!, 0)));
  }
  it("computes op(A)·op(B) for all transpose flags", () => {
    const A = randTensor(rng, [3, 4]);
    const B = randTensor(rng, [4, 5]);
    const a2 = [0, 1, 2].map((i) => [0, 1, 2, 3].map((k) => A.data[i * 4 + k]!));
    const b2 = [0, 1, 2, 3].map((k) => [0, 1, 2, 3, 4].map((j) => B.data[k * 5 + j]!));
    const want = naive(a2, b2).flat();
    const At = transpose(A);
    const Bt = transpose(B);
    for (const [a, b, transA, transB] of [
      [A, B, false, false],
      [At, B, true, false],
      [A, Bt, false, true],
      [At, Bt, true, true],
    ] as const) {
      const got = matmul(a, b, { transA, transB });
      expect(got.shape).toEqual([3, 5]);
      got.data.forEach((v, i) => {
        expect(v).toBeCloseTo(want[i]!, 5);
      });
    }
  });
  it("gradients for every transpose combination, batched with shared and per-batch B", () => {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const aShape = transA ? [2, 4, 3] : [2, 3, 4];
        const bShape = transB ? [5, 4] : [4, 5];
        expectGrads(
          ([a, b]) => matmul(a!, b!, { transA, transB }),
          [randTensor(rng, aShape), randTensor(rng, bShape)],
        );
        expectGrads(
          ([a, b]) => matmul(a!, b!, { transA, transB }),
          [randTensor(rng, aShape), randTensor(rng, [2, ...bShape])],
        );
      }
    }
  });
  it("linear with and without bias", () => {
    expectGrads(
      ([x, w, b]) => linear(x!, w!, b!),
      [randTensor(rng, [2, 3, 4]), randTensor(rng, [5, 4]), randTensor(rng, [5])],
    );
    expectGrads(([x, w]) => linear(x!, w!, null), [randTensor(rng, [3, 4]), randTensor(rng, [2, 4])]);
  });
});

describe("reductions and shape ops", () => {
  const rng = seeded(3);
  it("sum/mean over each axis and overall", () => {
    for (const axis of [0, 1, -1]) {
      expectGrads(([a]) => sum(a!, axis), [randTensor(rng, [2, 3, 4])]);
      expectGrads(([a]) => mean(a!, axis, true), [randTensor(rng, [2, 3, 4])]);
    }
    expectGrads(([a]) => sumAll(a!), [randTensor(rng, [3, 2])]);
    expectGrads(([a]) => meanAll(a!), [randTensor(rng, [3, 2])]);
    const x = randTensor(rng, [2, 3]);
    expect(sum(x, 0).data[1]).toBeCloseTo(x.data[1]! + x.data[4]!, 6);
    expect(mean(x, 1).shape).toEqual([2]);
  });
  it("reshape, transpose, slice, concat", () => {
    expectGrads(([a]) => mul(reshape(a!, [3, -1]), randTensor(seeded(9), [3, 4])), [randTensor(rng, [2, 6])]);
    expectGrads(([a]) => transpose(a!), [randTensor(rng, [2, 3, 4])]);
    expectGrads(([a]) => slice(a!, 1, 1, 3), [randTensor(rng, [2, 4, 3])]);
    expectGrads(([a, b]) => concat([a!, b!], 1), [randTensor(rng, [2, 1, 3]), randTensor(rng, [2, 2, 3])]);
    const t = transpose(randTensor(rng, [2, 3]));
    expect(t.shape).toEqual([3, 2]);
    expect(() => reshape(t, [4, 2])).toThrow(/cannot view/);
  });
});

describe("embedding, normalisation, softmax, dropout, cross-entropy", () => {
  const rng = seeded(4);
  it("embedding scatters gradients into repeated rows", () => {
    const ids = Int32Array.from([2, 0, 2, 1]);
    expectGrads(([t]) => embedding(t!, ids, [2, 2]), [randTensor(rng, [3, 4])]);
    expect(() => embedding(randTensor(rng, [3, 4]), Int32Array.of(3))).toThrow(/outside/);
  });
  it("layerNorm and rmsNorm", () => {
    expectGrads(
      ([x, g, b]) => layerNorm(x!, g!, b!),
      [randTensor(rng, [3, 5]), randTensor(rng, [5], 0.5, 1.5), randTensor(rng, [5])],
    );
    expectGrads(([x, w]) => rmsNorm(x!, w!), [randTensor(rng, [3, 5]), randTensor(rng, [5], 0.5, 1.5)]);
    const y = rmsNorm(randTensor(rng, [1, 4]), randTensor(rng, [4], 1, 1)).data;
    expect(y.reduce((s, v) => s + v * v, 0) / 4).toBeCloseTo(1, 4);
  });
  it("softmax and logSoftmax", () => {
    expectGrads(([x]) => softmax(x!), [randTensor(rng, [2, 5], -3, 3)]);
    expectGrads(([x]) => logSoftmax(x!), [randTensor(rng, [2, 5], -3, 3)]);
    const p = softmax(randTensor(rng, [1, 6], -50, 50)).data;
    expect(p.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
  });
  it("dropout zeroes about p of the elements, scales survivors, and back-propagates through the mask", () => {
    const x = randTensor(rng, [10000], 1, 1);
    const y = dropout(x, 0.25, new Rng(5)).data;
    const kept = y.filter((v) => v !== 0);
    expect(kept.length / 10000).toBeGreaterThan(0.73);
    expect(kept.length / 10000).toBeLessThan(0.77);
    kept.forEach((v) => {
      expect(v).toBeCloseTo(1 / 0.75, 6);
    });
    expectGrads(([a]) => dropout(a!, 0.5, new Rng(11)), [randTensor(rng, [20])]);
  });
  it("linearCrossEntropy equals log-softmax cross-entropy and has correct gradients", () => {
    const H = randTensor(rng, [4, 3]);
    const W = randTensor(rng, [6, 3]);
    const b = randTensor(rng, [6]);
    const labels = Int32Array.from([1, 0, 5, 2]);
    const fused = linearCrossEntropy(H, W, b, labels, 0).item();
    const lp = logSoftmax(linear(H, W, b)).data;
    const want = -(lp[0 * 6 + 1]! + lp[2 * 6 + 5]! + lp[3 * 6 + 2]!) / 3;
    expect(fused).toBeCloseTo(want, 5);
    expectGrads(([h, w, bb]) => linearCrossEntropy(h!, w!, bb!, labels, 0), [H, W, b]);
    expectGrads(([h, w]) => scale(linearCrossEntropy(h!, w!, null, labels, 0), 3), [H, W]);
  });
});
