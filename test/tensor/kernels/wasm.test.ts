import { afterAll, describe, expect, it } from "vitest";
import type { Kernels } from "../../../src/tensor/kernels/api.js";
import { referenceKernels as ref } from "../../../src/tensor/kernels/reference.js";
import { createWasmKernels, type WasmKernels } from "../../../src/tensor/kernels/wasm.js";
import { expectClose, randomArray } from "./compare.js";

// Each backend runs single-threaded, with the helper thread offered every call (thresholds 1), and with the
// helper forced to do all of every call, so the plain path and the split path (dynamic row/column split,
// dW/dBias/dGamma partial reduction) are all checked.
// Both builds (baseline SIMD and relaxed-SIMD fused multiply-add) are tested.
const backends: { label: string; k: WasmKernels }[] = [];
for (const variant of ["simd", "relaxed"] as const) {
  backends.push({ label: `${variant}, 1 thread`, k: createWasmKernels({ variant, threads: 1 }) });
  backends.push({
    label: `${variant}, 2 threads`,
    // Small CE blocks so that even the small test cases have several blocks for the two threads to share.
    k: createWasmKernels({
      variant,
      threads: 2,
      parallelMinFlops: 1,
      parallelMinElements: 1,
      ceBlockRows: 8,
    }),
  });
  // The helper thread does all of every split call: its results (and the partial-sum reductions) must be right
  // on their own, whatever the scheduling.
  backends.push({
    label: `${variant}, helper thread only`,
    k: createWasmKernels({
      variant,
      threads: 2,
      parallelMinFlops: 1,
      parallelMinElements: 1,
      ceBlockRows: 8,
      helperFirst: true,
    }),
  });
}
afterAll(() => {
  for (const b of backends) b.k.dispose();
});

describe.each(backends)("wasm kernels, $label", ({ label, k }) => {
  afterAll(() => {
    // Guards the "helper thread only" runs against a helper that silently skips its calls.
    if (label.endsWith("helper thread only")) expect(k.helperCalls()).toBeGreaterThan(50);
    if (label.endsWith("1 thread")) expect(k.helperCalls()).toBe(0);
  });

  describe("linearForward", () => {
    // x·Wᵀ + bias must be the bits of "bias rows, then gemm with beta 1" (the path of backends without it),
    // across the depth blocks (K > 256: the bias enters the first block's sums only), edge tiles and N > NC.
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [5, 3, 7],
      [17, 23, 31],
      [9, 13, 257],
      [130, 9, 600],
      [3, 2100, 5],
      [2, 3, 0],
    ];
    for (const [rows, outF, inF] of shapes) {
      it(`rows=${rows} out=${outF} in=${inF}`, () => {
        const x = randomArray(rows * inF, rows + inF);
        const w = randomArray(outF * inF, outF * 3 + inF);
        const bias = randomArray(outF, outF + 11, -2, 2);
        const want = new Float32Array(rows * outF);
        for (let r = 0; r < rows; r++) want.set(bias, r * outF);
        k.gemm(false, true, rows, outF, inF, 1, x, w, 1, want);
        const got = randomArray(rows * outF, 9); // stale contents must not leak in
        k.linearForward(x, w, bias, rows, inF, outF, got);
        expect([...got]).toEqual([...want]);
        const refOut = new Float32Array(rows * outF);
        for (let r = 0; r < rows; r++) refOut.set(bias, r * outF);
        ref.gemm(false, true, rows, outF, inF, 1, x, w, 1, refOut);
        expectClose(got, refOut);
      });
    }
  });

  describe("gemm", () => {
    // Sizes include 1, odd sizes, and ones that cross the KC=256, MC=128 and NC=2048 blocking boundaries.
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [1, 7, 3],
      [5, 1, 9],
      [17, 23, 31],
      [4, 8, 256],
      [9, 13, 257],
      [130, 9, 70],
      [3, 2100, 5],
    ];
    const scalings: [number, number][] = [
      [1, 0],
      [0.5, 1],
      [-1.5, 0.25],
    ];
    for (const [M, N, K] of shapes) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          it(`M=${M} N=${N} K=${K} transA=${transA} transB=${transB}`, () => {
            const A = randomArray(M * K, M * 7 + K);
            const B = randomArray(K * N, N * 13 + K);
            for (const [alpha, beta] of scalings) {
              const C0 = randomArray(M * N, M + N);
              const want = C0.slice();
              const got = C0.slice();
              ref.gemm(transA, transB, M, N, K, alpha, A, B, beta, want);
              k.gemm(transA, transB, M, N, K, alpha, A, B, beta, got);
              expectClose(got, want);
            }
          });
        }
      }
    }

    it("beta = 0 ignores NaN already in C", () => {
      const [M, N, K] = [6, 10, 4];
      const A = randomArray(M * K, 1);
      const B = randomArray(K * N, 2);
      const want = new Float32Array(M * N);
      const got = new Float32Array(M * N).fill(Number.NaN);
      ref.gemm(false, false, M, N, K, 1, A, B, 0, want);
      k.gemm(false, false, M, N, K, 1, A, B, 0, got);
      expectClose(got, want);
    });

    it("K = 0 scales C by beta", () => {
      const C = Float32Array.from([1, 2, 3, 4, 5, 6]);
      k.gemm(false, false, 2, 3, 0, 1, new Float32Array(0), new Float32Array(0), 0.5, C);
      expect(Array.from(C)).toEqual([0.5, 1, 1.5, 2, 2.5, 3]);
    });

    it("rejects arrays shorter than the shape", () => {
      expect(() =>
        k.gemm(false, false, 4, 4, 4, 1, new Float32Array(15), new Float32Array(16), 0, new Float32Array(16)),
      ).toThrow(/gemm A has 15 elements, needs 16/);
    });
  });

  describe("linearCrossEntropy", () => {
    type Case = { N: number; D: number; V: number; bias: boolean; ignoreEvery: number; ignoreIndex: number };
    const cases: Case[] = [
      { N: 1, D: 1, V: 1, bias: false, ignoreEvery: 0, ignoreIndex: -100 },
      { N: 7, D: 5, V: 13, bias: true, ignoreEvery: 3, ignoreIndex: -100 },
      { N: 50, D: 64, V: 301, bias: true, ignoreEvery: 4, ignoreIndex: -100 },
      { N: 90, D: 12, V: 9, bias: false, ignoreEvery: 5, ignoreIndex: -1 }, // several 32-row blocks + remainder
      { N: 33, D: 17, V: 64, bias: true, ignoreEvery: 2, ignoreIndex: -100 },
      { N: 400, D: 24, V: 700, bias: true, ignoreEvery: 3, ignoreIndex: -100 }, // long enough for both threads
    ];
    const inputs = (c: Case) => {
      const H = randomArray(c.N * c.D, c.N + 1);
      const W = randomArray(c.V * c.D, c.V + 2, -2, 2);
      const bias = c.bias ? randomArray(c.V, 3) : null;
      const labels = Int32Array.from({ length: c.N }, (_, i) =>
        c.ignoreEvery && i % c.ignoreEvery === 1 ? c.ignoreIndex : (i * 7 + 3) % c.V,
      );
      return { H, W, bias, labels, N: c.N, D: c.D, V: c.V, ignoreIndex: c.ignoreIndex };
    };

    for (const c of cases) {
      it(`N=${c.N} D=${c.D} V=${c.V} bias=${c.bias} ignore every ${c.ignoreEvery}`, () => {
        const args = inputs(c);
        const gw = {
          dH: randomArray(c.N * c.D, 9),
          dW: randomArray(c.V * c.D, 10),
          dBias: randomArray(c.V, 11),
        };
        const gg = { dH: gw.dH.slice(), dW: gw.dW.slice(), dBias: gw.dBias.slice() };
        const want = ref.linearCrossEntropy({ ...args, ...gw });
        const got = k.linearCrossEntropy({ ...args, ...gg });
        expect(got.count).toBe(want.count);
        expect(Math.abs(got.loss - want.loss) / Math.max(1, Math.abs(want.loss))).toBeLessThan(1e-5);
        expectClose(gg.dH, gw.dH);
        expectClose(gg.dW, gw.dW); // accumulated onto the random initial values
        expectClose(gg.dBias, gw.dBias);
        // Forward only gives the same loss.
        const lossOnly = k.linearCrossEntropy(args);
        expect(lossOnly.loss).toBeCloseTo(got.loss, 4);
      });
    }

    it("large logits stay finite (max subtraction)", () => {
      const c: Case = { N: 5, D: 3, V: 11, bias: true, ignoreEvery: 0, ignoreIndex: -100 };
      const args = { ...inputs(c), H: randomArray(15, 5, 40, 60) };
      const gw = { dH: new Float32Array(15), dW: new Float32Array(33), dBias: new Float32Array(11) };
      const gg = { dH: new Float32Array(15), dW: new Float32Array(33), dBias: new Float32Array(11) };
      const want = ref.linearCrossEntropy({ ...args, ...gw });
      const got = k.linearCrossEntropy({ ...args, ...gg });
      expect(Number.isFinite(got.loss)).toBe(true);
      expect(Math.abs(got.loss - want.loss) / Math.max(1, want.loss)).toBeLessThan(1e-4);
      expectClose(gg.dH, gw.dH);
      expectClose(gg.dW, gw.dW);
    });

    it("only the gradients asked for are written", () => {
      const c = cases[2]!;
      const args = inputs(c);
      const want = new Float32Array(c.V * c.D);
      const got = new Float32Array(c.V * c.D);
      ref.linearCrossEntropy({ ...args, dW: want });
      k.linearCrossEntropy({ ...args, dW: got });
      expectClose(got, want);
    });

    it("all rows ignored: zero loss and count, dH zeroed, dW/dBias untouched", () => {
      const c = cases[1]!;
      const args = { ...inputs(c), labels: new Int32Array(c.N).fill(-100) };
      const dH = randomArray(c.N * c.D, 1);
      const dW = randomArray(c.V * c.D, 2);
      const dW0 = dW.slice();
      const dBias = randomArray(c.V, 3);
      const dBias0 = dBias.slice();
      expect(k.linearCrossEntropy({ ...args, dH, dW, dBias })).toEqual({ loss: 0, count: 0 });
      expect(dH.every((v) => v === 0)).toBe(true);
      expect(dW).toEqual(dW0);
      expect(dBias).toEqual(dBias0);
    });

    it("rejects a label outside [0, V) that is not the ignore index", () => {
      const c = cases[1]!;
      const args = inputs(c);
      args.labels[2] = c.V;
      expect(() => k.linearCrossEntropy(args)).toThrow(/label 13 at row 2 out of range/);
    });
  });

  describe("layerNorm", () => {
    for (const [rows, cols] of [
      [1, 1],
      [37, 13],
      [64, 64],
      [5, 3],
    ] as [number, number][]) {
      it(`forward and backward rows=${rows} cols=${cols}`, () => {
        const x = randomArray(rows * cols, rows + cols, -3, 5);
        const gamma = randomArray(cols, 2, 0.5, 1.5);
        const beta = randomArray(cols, 3);
        const fw = [new Float32Array(rows * cols), new Float32Array(rows), new Float32Array(rows)] as const;
        const fg = [new Float32Array(rows * cols), new Float32Array(rows), new Float32Array(rows)] as const;
        ref.layerNormForward(x, gamma, beta, rows, cols, 1e-5, ...fw);
        k.layerNormForward(x, gamma, beta, rows, cols, 1e-5, ...fg);
        expectClose(fg[0], fw[0]);
        expectClose(fg[1], fw[1]);
        expectClose(fg[2], fw[2]);

        const dy = randomArray(rows * cols, 4);
        const bw = [new Float32Array(rows * cols), randomArray(cols, 5), randomArray(cols, 6)] as const;
        const bg = [new Float32Array(rows * cols), bw[1].slice(), bw[2].slice()] as const;
        ref.layerNormBackward(dy, x, gamma, fw[1], fw[2], rows, cols, ...bw);
        k.layerNormBackward(dy, x, gamma, fw[1], fw[2], rows, cols, ...bg);
        expectClose(bg[0], bw[0]);
        expectClose(bg[1], bw[1]);
        expectClose(bg[2], bw[2]);
      });
    }
  });

  describe("gelu", () => {
    const special = [0, -0, 1e-8, -1e-8, 0.5, -0.5, 3, -3, 5.6, -5.7, 10, -10, 30, -30, 100, -100];
    const x = new Float32Array([...special, ...randomArray(4093, 17, -8, 8)]);
    // GELU(x) = x·Φ(x): an erf error ε shows up as |x|·ε/2, so the bound scales with |x|.
    const expectGeluClose = (xs: Float32Array, got: Float32Array, want: Float32Array) => {
      for (let i = 0; i < xs.length; i++) {
        expect(Math.abs(got[i]! - want[i]!), `x=${xs[i]}`).toBeLessThanOrEqual(
          1e-6 * Math.max(1, Math.abs(xs[i]!)),
        );
      }
    };

    it("forward is within 1e-6·max(1,|x|) of exact-erf GELU", () => {
      const want = new Float32Array(x.length);
      const got = new Float32Array(x.length);
      ref.geluForward(x, want);
      k.geluForward(x, got);
      expectGeluClose(x, got, want);
    });

    it("backward matches the reference", () => {
      const dy = randomArray(x.length, 23);
      const want = new Float32Array(x.length);
      const got = new Float32Array(x.length);
      ref.geluBackward(dy, x, want);
      k.geluBackward(dy, x, got);
      for (let i = 0; i < x.length; i++) {
        expect(Math.abs(got[i]! - want[i]!), `x=${x[i]}`).toBeLessThanOrEqual(2e-6);
      }
    });

    it("handles lengths that are not a multiple of 4, and length 0", () => {
      for (const n of [0, 1, 2, 3, 5]) {
        const xs = randomArray(n, n + 100, -4, 4);
        const want = new Float32Array(n);
        const got = new Float32Array(n);
        ref.geluForward(xs, want);
        k.geluForward(xs, got);
        expectGeluClose(xs, got, want);
      }
    });
  });

  describe("embedding", () => {
    const dim = 5;
    const table = randomArray(7 * dim, 31);
    const ids = Int32Array.from([3, 0, 6, 3, 3, 1]);

    it("gathers rows", () => {
      const want = new Float32Array(ids.length * dim);
      const got = new Float32Array(ids.length * dim);
      ref.embeddingGather(table, ids, dim, want);
      k.embeddingGather(table, ids, dim, got);
      expect(got).toEqual(want);
    });

    it("scatter-adds with repeated ids", () => {
      const dOut = randomArray(ids.length * dim, 32);
      const want = randomArray(7 * dim, 33);
      const got = want.slice();
      ref.embeddingScatterAdd(dOut, ids, dim, want);
      k.embeddingScatterAdd(dOut, ids, dim, got);
      expectClose(got, want, 1e-6);
    });

    it("rejects ids outside the table", () => {
      expect(() => k.embeddingGather(table, Int32Array.from([7]), dim, new Float32Array(dim))).toThrow(
        /embedding id 7 at 0 out of range \[0, 7\)/,
      );
    });
  });

  it("reuses its scratch memory across calls", () => {
    const run = (kk: Kernels) => {
      const A = randomArray(200 * 300, 1);
      const B = randomArray(300 * 100, 2);
      kk.gemm(false, false, 200, 100, 300, 1, A, B, 0, new Float32Array(200 * 100));
    };
    run(k);
    const after = k.memoryBytes();
    for (let i = 0; i < 5; i++) run(k);
    expect(k.memoryBytes()).toBe(after);
  });
});

describe("wasm kernel methods", () => {
  it("work when detached from the backend object (callers do `const gemm = kernels().gemm`)", () => {
    const k = createWasmKernels({ threads: 1 });
    const { gemm, geluForward } = k;
    const C = new Float32Array(4);
    gemm(false, false, 2, 2, 1, 1, Float32Array.from([1, 2]), Float32Array.from([3, 4]), 0, C);
    expect(Array.from(C)).toEqual([3, 4, 6, 8]);
    const y = new Float32Array(1);
    geluForward(Float32Array.from([0]), y);
    expect(y[0]).toBe(0);
  });
});

describe("wasm kernel options", () => {
  it("rejects a thread count other than 1 or 2", () => {
    expect(() => createWasmKernels({ threads: 3 })).toThrow(/threads must be 1 or 2/);
  });
});

describe("wasm kernels are deterministic across thread counts and scheduling", () => {
  it("fused CE and LayerNorm backward give bitwise-identical results on 1 and 2 threads", () => {
    const one = createWasmKernels({ threads: 1, ceBlockRows: 8 });
    const two = createWasmKernels({
      threads: 2,
      parallelMinFlops: 1,
      parallelMinElements: 1,
      ceBlockRows: 8,
    });
    const helper = createWasmKernels({
      threads: 2,
      parallelMinFlops: 1,
      parallelMinElements: 1,
      ceBlockRows: 8,
      helperFirst: true,
    });
    try {
      const [N, D, V] = [300, 16, 257];
      const H = randomArray(N * D, 1);
      const W = randomArray(V * D, 2);
      const bias = randomArray(V, 3);
      const labels = Int32Array.from({ length: N }, (_, i) => (i % 5 === 0 ? -100 : (i * 31) % V));
      const ce = (k: WasmKernels) => {
        // Non-zero starting gradients, so that a different summation order would show in the last bits.
        const g = { dH: new Float32Array(N * D), dW: randomArray(V * D, 8), dBias: randomArray(V, 9) };
        const { loss } = k.linearCrossEntropy({ H, W, bias, labels, N, D, V, ignoreIndex: -100, ...g });
        return { loss, ...g };
      };
      const ln = (k: WasmKernels) => {
        const [rows, cols] = [300, 24];
        const x = randomArray(rows * cols, 4);
        const mean = new Float32Array(rows);
        const rstd = new Float32Array(rows);
        const gamma = randomArray(cols, 5);
        k.layerNormForward(
          x,
          gamma,
          randomArray(cols, 6),
          rows,
          cols,
          1e-5,
          new Float32Array(x.length),
          mean,
          rstd,
        );
        const out = {
          dx: new Float32Array(x.length),
          dGamma: randomArray(cols, 10),
          dBeta: randomArray(cols, 11),
        };
        k.layerNormBackward(
          randomArray(x.length, 7),
          x,
          gamma,
          mean,
          rstd,
          rows,
          cols,
          out.dx,
          out.dGamma,
          out.dBeta,
        );
        return out;
      };
      const want = { ce: ce(one), ln: ln(one) };
      for (const k of [two, helper, two]) {
        expect(ce(k)).toEqual(want.ce);
        expect(ln(k)).toEqual(want.ln);
      }
      expect(helper.helperCalls()).toBeGreaterThan(0);
    } finally {
      one.dispose();
      two.dispose();
      helper.dispose();
    }
  });
});
