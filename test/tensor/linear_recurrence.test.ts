import { describe, expect, it } from "vitest";
import { gradCheck } from "../../src/tensor/gradcheck.js";
import { createWasmKernels, kernels, referenceKernels, setKernels } from "../../src/tensor/kernels/index.js";
import { mul } from "../../src/tensor/ops/elementwise.js";
import { linearRecurrenceScan, type ScanLayout } from "../../src/tensor/ops/linear_recurrence.js";
import { sumAll } from "../../src/tensor/ops/reduce.js";
import { Rng } from "../../src/tensor/rng.js";
import { backward } from "../../src/tensor/tape.js";
import { Tensor } from "../../src/tensor/tensor.js";

const C = 3;

function randomLambda(rng: Rng): Tensor {
  const re: number[] = [];
  const im: number[] = [];
  for (let c = 0; c < C; c++) {
    const r = rng.uniformIn(0.5, 0.99);
    const th = rng.uniformIn(0, 2 * Math.PI);
    re.push(r * Math.cos(th));
    im.push(r * Math.sin(th));
  }
  return Tensor.from([...re, ...im]);
}

function layoutOf(lengths: number[], masks: number[][], paddedLength: number): ScanLayout {
  const rowStart = new Int32Array(lengths.length);
  let r = 0;
  lengths.forEach((n, k) => {
    rowStart[k] = r;
    r += n;
  });
  return { rowStart, length: Int32Array.from(lengths), paddedLength, mask: Uint8Array.from(masks.flat()) };
}

/** h_t = λ·mask_{t−1}·h_{t−1} + bu_t in float64, per sequence. */
function sequential(bu: Tensor, lambda: Tensor, layout: ScanLayout): Float64Array {
  const W = 2 * C;
  const out = new Float64Array(bu.size);
  layout.rowStart.forEach((r0, k) => {
    for (let t = 0; t < layout.length[k]!; t++) {
      const r = r0 + t;
      for (let c = 0; c < C; c++) {
        let re = bu.data[r * W + c]!;
        let im = bu.data[r * W + C + c]!;
        if (t > 0 && layout.mask[r - 1]) {
          const pr = out[(r - 1) * W + c]!;
          const pi = out[(r - 1) * W + C + c]!;
          const lr = lambda.data[c]!;
          const li = lambda.data[C + c]!;
          re += lr * pr - li * pi;
          im += lr * pi + li * pr;
        }
        out[r * W + c] = re;
        out[r * W + C + c] = im;
      }
    }
  });
  return out;
}

/**
 * A literal transcription of the official lru_parallel on the full left-padded array (unstored padding
 * rows get junk inputs and mask 0), in float64 with complex numbers as [re, im].
 */
function officialParallel(bu: Tensor, lambda: Tensor, layout: ScanLayout, junk: Rng): Float64Array {
  const P = layout.paddedLength;
  const W = 2 * C;
  const out = new Float64Array(bu.size);
  layout.rowStart.forEach((r0, k) => {
    const n = layout.length[k]!;
    const h: number[][][] = []; // [P][C][2]
    const mask: number[] = [];
    for (let v = 0; v < P; v++) {
      const t = v - (P - n);
      mask.push(t >= 0 ? layout.mask[r0 + t]! : 0);
      h.push(
        Array.from({ length: C }, (_, c) =>
          t >= 0
            ? [bu.data[(r0 + t) * W + c]!, bu.data[(r0 + t) * W + C + c]!]
            : [junk.normal(), junk.normal()],
        ),
      );
    }
    let lamb: number[][][] = [Array.from({ length: C }, (_, c) => [lambda.data[c]!, lambda.data[C + c]!])];
    const cm = (a: number[], b: number[]) => [a[0]! * b[0]! - a[1]! * b[1]!, a[0]! * b[1]! + a[1]! * b[0]!];
    for (let i = 1; 2 ** i <= P; i++) {
      const l = 2 ** i;
      if (i > 1) lamb = [...lamb, ...lamb.map((p) => p.map((z, c) => cm(z, lamb[lamb.length - 1]![c]!)))];
      for (let b = 0; b < P; b += l) {
        const s = b + l / 2 - 1;
        for (let j = 0; j < l / 2; j++) {
          for (let c = 0; c < C; c++) {
            const add = cm(lamb[j]![c]!, h[s]![c]!).map((z) => z * mask[s]!);
            h[s + 1 + j]![c] = [h[s + 1 + j]![c]![0]! + add[0]!, h[s + 1 + j]![c]![1]! + add[1]!];
          }
        }
      }
    }
    for (let t = 0; t < n; t++) {
      for (let c = 0; c < C; c++) {
        out[(r0 + t) * W + c] = h[P - n + t]![c]![0]!;
        out[(r0 + t) * W + C + c] = h[P - n + t]![c]![1]!;
      }
    }
  });
  return out;
}

function randomBu(rng: Rng, rows: number): Tensor {
  return Tensor.from(
    Array.from({ length: rows * 2 * C }, () => rng.uniformIn(-1, 1)),
    [rows, 2 * C],
  );
}

describe("linearRecurrenceScan", () => {
  it("equals the sequential recurrence and the official scan for left-padded sequences up to length 16", () => {
    const rng = new Rng(1);
    const lambda = randomLambda(rng);
    for (const P of [1, 2, 8, 16]) {
      const lengths: number[] = [];
      const masks: number[][] = [];
      for (let n = 1; n <= P; n++) {
        // The first stored row may be a padding row carrying a label (mask 0), as in training batches.
        lengths.push(n);
        masks.push(Array.from({ length: n }, (_, t) => (t === 0 && n % 2 === 0 ? 0 : 1)));
      }
      const layout = layoutOf(lengths, masks, P);
      const rows = lengths.reduce((a, b) => a + b, 0);
      const bu = randomBu(rng, rows);
      const got = linearRecurrenceScan(bu, lambda, layout).data;
      const want = sequential(bu, lambda, layout);
      const official = officialParallel(bu, lambda, layout, new Rng(P));
      want.forEach((v, i) => {
        expect(got[i]).toBeCloseTo(v, 5);
        expect(official[i]).toBeCloseTo(v, 9);
      });
    }
  });

  it("matches the official parallel scan on the full padded array, even with a hole in the mask", () => {
    const rng = new Rng(2);
    const lambda = randomLambda(rng);
    const layout = layoutOf(
      [7, 5, 8],
      [
        [1, 0, 1, 1, 1, 1, 1],
        [0, 1, 1, 1, 1],
        [1, 1, 1, 0, 0, 1, 1, 1],
      ],
      8,
    );
    const bu = randomBu(rng, 20);
    const got = linearRecurrenceScan(bu, lambda, layout).data;
    const want = officialParallel(bu, lambda, layout, new Rng(3));
    want.forEach((v, i) => {
      expect(got[i]).toBeCloseTo(v, 5);
    });
    // With the hole the scan differs from the naive recurrence (the official algorithm only checks the
    // mask at block boundaries), so this comparison is not vacuous.
    const naive = sequential(bu, lambda, layout);
    expect(naive.some((v, i) => Math.abs(v - want[i]!) > 1e-3)).toBe(true);
  });

  it("has correct gradients for the inputs and for λ", () => {
    const rng = new Rng(4);
    const layout = layoutOf(
      [6, 3, 8],
      [
        [0, 1, 1, 1, 1, 1],
        [1, 1, 1],
        [1, 1, 0, 1, 1, 1, 1, 1],
      ],
      8,
    );
    const r = gradCheck(
      ([bu, lam]) => linearRecurrenceScan(bu!, lam!, layout),
      [randomBu(rng, 17), randomLambda(rng)],
    );
    expect(r.mismatches).toEqual([]);
    expect(r.checked).toBe(17 * 6 + 6);
  });
});

describe("linearRecurrenceScan in the wasm kernels", () => {
  // An even state size (the kernel's case; LRURec's is 2·d): the sequential sequences run in wasm, block-scan ones
  // (a hole in the mask) in JS. Values and gradients must be those of the JS loops bit for bit, on 1 and 2 threads.
  const C2 = 4;
  const layout = layoutOf(
    [6, 3, 8, 5],
    [
      [0, 1, 1, 1, 1, 1],
      [1, 1, 1],
      [1, 1, 0, 1, 1, 1, 1, 1],
      [0, 0, 1, 1, 1],
    ],
    8,
  );
  const rows = 22;
  const data = (seed: number, n: number) => {
    const rng = new Rng(seed);
    return Float32Array.from({ length: n }, () => rng.uniformIn(-0.9, 0.9));
  };
  const bu0 = data(1, rows * 2 * C2);
  const lam0 = data(2, 2 * C2);
  const proj = data(3, rows * 2 * C2);
  const run = () => {
    const bu = new Tensor(bu0.slice(), [rows, 2 * C2], true);
    const lam = new Tensor(lam0.slice(), [2 * C2], true);
    const h = linearRecurrenceScan(bu, lam, layout);
    backward(sumAll(mul(h, new Tensor(proj, h.shape))));
    return { h: [...h.data], dBu: [...bu.grad!], dLam: [...lam.grad!] };
  };

  it("gives the JS loops' values and gradients bit for bit, and passes a gradient check", () => {
    const before = kernels();
    try {
      setKernels(referenceKernels);
      const js = run();
      for (const options of [{ threads: 1 }, { threads: 2, parallelMinElements: 1 }]) {
        const k = createWasmKernels(options);
        let calls = 0;
        const { recurrenceForward, recurrenceBackward } = k;
        k.recurrenceForward = (...args) => {
          calls++;
          recurrenceForward(...args);
        };
        k.recurrenceBackward = (...args) => {
          calls++;
          recurrenceBackward(...args);
        };
        setKernels(k);
        expect(run()).toEqual(js);
        expect(calls).toBe(2); // the kernels did run
        const r = gradCheck(
          ([bu, lam]) => linearRecurrenceScan(bu!, lam!, layout),
          [new Tensor(bu0.slice(), [rows, 2 * C2]), new Tensor(lam0.slice(), [2 * C2])],
        );
        expect(r.mismatches).toEqual([]);
        k.dispose();
      }
    } finally {
      setKernels(before);
    }
  });
});
