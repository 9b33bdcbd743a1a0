import { afterAll, describe, expect, it } from "vitest";
import { referenceKernels as ref } from "../../../src/tensor/kernels/reference.js";
import { createWasmKernels } from "../../../src/tensor/kernels/wasm.js";
import { Rng } from "../../../src/tensor/rng.js";
import { randomArray } from "./compare.js";

// Buffers inside the wasm heap (`resident`) are used in place by the kernels; every result must be bit for bit
// the one computed from ordinary arrays (copied in and out), including when an output overlaps an input.
const k = createWasmKernels({ threads: 1 });
afterAll(() => k.dispose());

function resident(src: Float32Array): Float32Array {
  const r = k.resident(src.length);
  r.set(src);
  return r;
}

describe("resident buffers", () => {
  it("are zeroed and distinct", () => {
    const a = k.resident(10);
    const b = k.resident(10);
    expect([...a]).toEqual(new Array(10).fill(0));
    a.fill(1);
    expect([...b]).toEqual(new Array(10).fill(0));
    expect(b.byteOffset).toBeGreaterThanOrEqual(a.byteOffset + 40);
  });

  it("gemm in place gives the same bits as with copies, accumulating too; an output overlapping an input is safe", () => {
    const [M, N, K] = [37, 29, 70];
    const A = randomArray(M * K, 1);
    const B = randomArray(K * N, 2);
    const C0 = randomArray(M * N, 3);
    for (const beta of [0, 1, 0.5]) {
      const plain = C0.slice();
      k.gemm(false, false, M, N, K, 1, A, B, beta, plain);
      const inPlace = resident(C0);
      k.gemm(false, false, M, N, K, 1, resident(A), resident(B), beta, inPlace);
      expect([...inPlace]).toEqual([...plain]);
    }
    // C is A's storage (square case): the kernel must read A before C is written.
    const S = randomArray(16 * 16, 4);
    const expected = new Float32Array(256);
    k.gemm(false, false, 16, 16, 16, 1, S, S, 0, expected);
    const shared = resident(S);
    k.gemm(false, false, 16, 16, 16, 1, shared, shared, 0, shared);
    expect([...shared]).toEqual([...expected]);
  });

  it("layer norm, GELU and the fused cross-entropy in place equal the copied path", () => {
    const [rows, cols] = [33, 20];
    const x = randomArray(rows * cols, 5);
    const gamma = randomArray(cols, 6);
    const beta = randomArray(cols, 7);
    const fwd = (xx: Float32Array, y: Float32Array, mean: Float32Array, rstd: Float32Array) => {
      k.layerNormForward(xx, gamma, beta, rows, cols, 1e-5, y, mean, rstd);
      return [...y, ...mean, ...rstd];
    };
    expect(fwd(resident(x), k.resident(rows * cols), k.resident(rows), k.resident(rows))).toEqual(
      fwd(x, new Float32Array(rows * cols), new Float32Array(rows), new Float32Array(rows)),
    );
    // Odd length: the kernel writes whole lanes, so the output must not be used in place past its end.
    for (const n of [4097, 4096]) {
      const v = randomArray(n, 8, -4, 4);
      const y = new Float32Array(n);
      k.geluForward(v, y);
      const big = k.resident(n + 8);
      big.fill(7);
      const out = big.subarray(0, n);
      k.geluForward(resident(v), out);
      expect([...out]).toEqual([...y]);
      expect([...big.subarray(n)]).toEqual(new Array(8).fill(7));
    }
    const [N, D, V] = [50, 12, 97];
    const H = randomArray(N * D, 9);
    const W = randomArray(V * D, 10);
    const labels = Int32Array.from({ length: N }, (_, i) => (i % 4 === 0 ? -100 : (i * 7) % V));
    const ce = (
      h: Float32Array,
      w: Float32Array,
      dH: Float32Array,
      dW: Float32Array,
      dBias: Float32Array,
    ) => {
      const { loss } = k.linearCrossEntropy({
        H: h,
        W: w,
        bias: null,
        labels,
        N,
        D,
        V,
        ignoreIndex: -100,
        dH,
        dW,
        dBias,
      });
      return [loss, ...dH, ...dW, ...dBias];
    };
    const dW0 = randomArray(V * D, 11);
    expect(ce(resident(H), resident(W), k.resident(N * D), resident(dW0), k.resident(V))).toEqual(
      ce(H, W, new Float32Array(N * D), dW0.slice(), new Float32Array(V)),
    );
  });
});

describe("addColumnSums", () => {
  it("adds the column sums of g into gb exactly as a plain loop over rows", () => {
    for (const [rows, cols] of [
      [1, 1],
      [7, 5],
      [300, 256],
      [33, 64],
    ] as const) {
      const g = randomArray(rows * cols, rows + cols);
      const expected = randomArray(cols, 3);
      const gb = expected.slice();
      for (let r = 0; r < rows; r++)
        for (let j = 0; j < cols; j++) expected[j] = expected[j]! + g[r * cols + j]!;
      k.addColumnSums(g, rows, cols, gb);
      expect([...gb]).toEqual([...expected]);
      const inPlace = resident(gb.fill(0));
      inPlace.set(randomArray(cols, 3));
      k.addColumnSums(resident(g), rows, cols, inPlace);
      expect([...inPlace]).toEqual([...expected]);
    }
  });
});

describe("dropout kernel", () => {
  it("is Rng.applyDropout / applyDropoutAdd bit for bit, draws included, for odd and even lengths", () => {
    for (const n of [0, 1, 2, 7, 1000, 1001]) {
      for (const p of [0.1, 0.2, 0.5]) {
        const src = randomArray(n, n + 1, -3, 3);
        const addend = randomArray(n, n + 2);
        for (const mode of [0, 1, 2] as const) {
          const a = new Rng(42);
          const expected = randomArray(n, 5);
          if (mode === 2) a.applyDropoutAdd(src, addend, expected, p);
          else a.applyDropout(src, expected, p, mode === 1);
          for (const inHeap of [false, true]) {
            const dst = inHeap ? resident(randomArray(n, 5)) : randomArray(n, 5);
            const state = new Rng(42).getState();
            k.dropout(inHeap ? resident(src) : src, dst, mode === 2 ? addend : null, p, mode, state);
            expect([...dst]).toEqual([...expected]);
            expect(state).toEqual(a.getState());
          }
        }
      }
    }
  });

  it("works in place (dst = src), as GELU + dropout uses it", () => {
    const src = randomArray(99, 1);
    const expected = src.slice();
    new Rng(3).applyDropout(expected, expected, 0.3, false);
    for (const buf of [src.slice(), resident(src)]) {
      k.dropout(buf, buf, null, 0.3, 0, new Rng(3).getState());
      expect([...buf]).toEqual([...expected]);
    }
  });

  it("the reference backend has no dropout kernel: ops fall back to the Rng", () => {
    expect(ref.dropout).toBeUndefined();
  });
});

describe("addScaled", () => {
  it("is the JS loop's a ± b bit for bit, in place or not, for lengths that are not a multiple of 4", () => {
    for (const n of [1, 5, 8, 1003]) {
      const a = randomArray(n, n, -100, 100);
      const b = randomArray(n, n + 1);
      for (const sign of [1, -1] as const) {
        const expected = Float32Array.from(a, (x, i) => x + sign * b[i]!);
        const out = new Float32Array(n);
        k.addScaled(a, b, sign, out);
        expect([...out]).toEqual([...expected]);
        const big = k.resident(n + 4).fill(5);
        k.addScaled(resident(a), resident(b), sign, big.subarray(0, n));
        expect([...big.subarray(0, n)]).toEqual([...expected]);
        expect([...big.subarray(n)]).toEqual([5, 5, 5, 5]);
        const inPlace = resident(a);
        k.addScaled(inPlace, b, sign, inPlace);
        expect([...inPlace]).toEqual([...expected]);
      }
    }
  });
});
