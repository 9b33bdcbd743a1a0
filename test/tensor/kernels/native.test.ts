import { afterAll, describe, expect, it } from "vitest";
import { kernelsFromEnv } from "../../../src/tensor/kernels/index.js";
import { loadNative } from "../../../src/tensor/kernels/native.js";
import {
  createWasmKernels,
  type WasmKernelOptions,
  type WasmKernels,
} from "../../../src/tensor/kernels/wasm.js";
import { WebAssemblyApi } from "../../../src/tensor/kernels/wasm-api.js";
import { randomArray, rng } from "./compare.js";

// The native kernels (src/tensor/kernels/native/*.cc) against the wasm relaxed build, bit for bit: every GEMM
// orientation, edge tiles in M, N and K, depth beyond one block, beta 0 over NaN, beta 1 and other, alpha ≠ 1,
// the bias path, tiny shapes; the fused cross-entropy's loss, count, dH, dW and dBias; GELU; dropout; the LRU
// recurrence; AdamW; layer norm. On 1 thread, on 2 threads
// with every call split, and with the helper thread doing all of every call (its own native binding).
// In CI (process.env.CI) the addon must be built: a missing addon fails instead of skipping.

const status = loadNative();
const available = "loaded" in status;

it("the native addon is built and loads (required in CI)", () => {
  if (!available && process.env.CI) expect.fail(`native kernels unavailable in CI: ${status.reason}`);
  if (!available) console.warn(`native kernels unavailable, native tests skipped: ${status.reason}`);
});

function bitsEqual(actual: Float32Array, expected: Float32Array, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i])
      expect.fail(`${what}: element ${i} is ${actual[i]}, the wasm kernel gives ${expected[i]}`);
  }
}

describe.runIf(available)("native kernels = wasm relaxed kernels, bit for bit", () => {
  // Pairs with the same split and block settings (the cross-entropy's dW sums depend on the block rows).
  const split: WasmKernelOptions = {
    threads: 2,
    parallelMinFlops: 1,
    parallelMinElements: 1,
    ceBlockRows: 8,
  };
  // (Built even when the suite is skipped: `native: available` keeps that from throwing.)
  const pairs: { label: string; wasm: WasmKernels; native: WasmKernels }[] = [
    {
      label: "1 thread",
      wasm: createWasmKernels({ variant: "relaxed", threads: 1, native: false }),
      native: createWasmKernels({ variant: "relaxed", threads: 1, native: available }),
    },
    {
      label: "2 threads, every call split",
      wasm: createWasmKernels({ variant: "relaxed", ...split, native: false }),
      native: createWasmKernels({ variant: "relaxed", ...split, native: available }),
    },
    {
      label: "helper thread only",
      wasm: createWasmKernels({ variant: "relaxed", threads: 1, ceBlockRows: 8, native: false }),
      native: createWasmKernels({ variant: "relaxed", ...split, helperFirst: true, native: available }),
    },
  ];
  afterAll(() => {
    for (const p of pairs) {
      p.wasm.dispose();
      p.native.dispose();
    }
  });

  it("is chosen by LLAMAREC_KERNELS: default and native use it, wasm does not", () => {
    const byDefault = kernelsFromEnv({ LLAMAREC_THREADS: "1" }) as WasmKernels;
    const forced = kernelsFromEnv({ LLAMAREC_THREADS: "1", LLAMAREC_KERNELS: "native" }) as WasmKernels;
    const wasmOnly = kernelsFromEnv({ LLAMAREC_THREADS: "1", LLAMAREC_KERNELS: "wasm" }) as WasmKernels;
    expect([byDefault.name, forced.name, wasmOnly.name]).toEqual(["wasm+native", "wasm+native", "wasm"]);
    // The baseline-SIMD build rounds products before adding: never combined with the native kernels.
    expect(createWasmKernels({ threads: 1, variant: "simd" }).native).toBe(false);
    expect(() => createWasmKernels({ threads: 1, variant: "simd", native: true })).toThrow(/relaxed/);
  });

  it("names the backend and keeps the memory's base address across growth", () => {
    expect(pairs[0]!.native.name).toBe("wasm+native");
    expect(pairs[0]!.native.native).toBe(true);
    expect(pairs[0]!.wasm.name).toBe("wasm");
    if (!("loaded" in status)) return;
    const memory = new WebAssemblyApi.Memory({ initial: 1, maximum: 65536, shared: true });
    const before = status.loaded.addon.address(new Uint8Array(memory.buffer));
    memory.grow(300);
    expect(status.loaded.addon.address(new Float32Array(memory.buffer, 4096, 8))).toBe(before);
  });

  // [M, N, K]: tiles of 6 × 16 (native) and 4 × 8 (wasm), row blocks of 120 / 128, depth blocks of 256,
  // column blocks of 2,048.
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [2, 3, 1],
    [5, 3, 7],
    [6, 16, 8],
    [7, 17, 33],
    [13, 9, 256],
    [13, 25, 257],
    [121, 31, 64],
    [130, 40, 600],
    [3, 2100, 5],
    [250, 70, 130],
  ];
  // [alpha, beta]: beta 0 must ignore C (NaN-filled here), beta 1 accumulates, others scale.
  const scalings: [number, number][] = [
    [1, 0],
    [1, 1],
    [0.7, 0],
    [1.3, -0.5],
    [0.5, 1],
  ];

  describe.each(pairs)("$label", ({ wasm, native }) => {
    it("gemm: every orientation, edge tiles, K > kc, alpha and beta", () => {
      let seed = 1;
      for (const [M, N, K] of shapes) {
        for (const tA of [false, true]) {
          for (const tB of [false, true]) {
            for (const [alpha, beta] of scalings) {
              const A = randomArray(M * K, seed++);
              const B = randomArray(K * N, seed++);
              const C0 = beta === 0 ? new Float32Array(M * N).fill(Number.NaN) : randomArray(M * N, seed++);
              const Cw = C0.slice();
              const Cn = C0.slice();
              wasm.gemm(tA, tB, M, N, K, alpha, A, B, beta, Cw);
              native.gemm(tA, tB, M, N, K, alpha, A, B, beta, Cn);
              bitsEqual(Cn, Cw, `gemm ${tA ? "T" : "N"}${tB ? "T" : "N"} ${M}×${N}×${K} α${alpha} β${beta}`);
              if (beta === 0) expect(Cn.some(Number.isNaN)).toBe(false);
            }
          }
        }
      }
      // No depth: C = beta·C (or 0).
      for (const beta of [0, 2]) {
        const Cw = randomArray(12, 99);
        const Cn = Cw.slice();
        wasm.gemm(false, false, 3, 4, 0, 1, new Float32Array(0), new Float32Array(0), beta, Cw);
        native.gemm(false, false, 3, 4, 0, 1, new Float32Array(0), new Float32Array(0), beta, Cn);
        bitsEqual(Cn, Cw, `gemm K = 0, beta ${beta}`);
      }
    });

    it("gemm: sums that cancel to ±0 and large magnitudes keep their bits", () => {
      // Integer-valued operands whose products cancel exactly: signed zeros and exact ties exercise the order.
      const r = rng(7);
      for (const [M, N, K] of [
        [9, 20, 300],
        [31, 8, 40],
      ] as [number, number, number][]) {
        const A = Float32Array.from({ length: M * K }, () => Math.round(r(-3, 3)) * 1e-3);
        const B = Float32Array.from({ length: K * N }, () => Math.round(r(-3, 3)) * 1e19);
        const Cw = new Float32Array(M * N);
        const Cn = new Float32Array(M * N);
        wasm.gemm(false, true, M, N, K, 1, A, B, 0, Cw);
        native.gemm(false, true, M, N, K, 1, A, B, 0, Cn);
        bitsEqual(Cn, Cw, `gemm cancellation ${M}×${N}×${K}`);
      }
    });

    it("linearForward (bias in the first depth block)", () => {
      let seed = 500;
      for (const [rows, outF, inF] of [
        [1, 1, 1],
        [5, 3, 7],
        [17, 23, 31],
        [9, 13, 257],
        [130, 9, 600],
        [3, 2100, 5],
        [200, 256, 64],
      ] as [number, number, number][]) {
        const x = randomArray(rows * inF, seed++);
        const w = randomArray(outF * inF, seed++);
        const b = randomArray(outF, seed++);
        const ow = new Float32Array(rows * outF).fill(Number.NaN);
        const on = ow.slice();
        wasm.linearForward(x, w, b, rows, inF, outF, ow);
        native.linearForward(x, w, b, rows, inF, outF, on);
        bitsEqual(on, ow, `linearForward ${rows}×${inF} → ${outF}`);
      }
    });

    it("GELU forward and backward", () => {
      let seed = 300;
      for (const n of [1, 3, 4, 8, 12, 37, 1000, 70_001]) {
        const x = randomArray(n, seed++, -6, 6);
        x[0] = -0;
        if (n > 4) x.set([0, 4, -4, 100], 1);
        const dy = randomArray(n, seed++);
        const yw = new Float32Array(n);
        const yn = new Float32Array(n);
        wasm.geluForward(x, yw);
        native.geluForward(x, yn);
        bitsEqual(yn, yw, `geluForward n ${n}`);
        wasm.geluBackward(dy, x, yw);
        native.geluBackward(dy, x, yn);
        bitsEqual(yn, yw, `geluBackward n ${n}`);
      }
    });

    it("dropout: every mode, odd lengths, in place, the generator's state", () => {
      let seed = 700;
      for (const n of [0, 1, 2, 7, 8, 9, 16, 17, 1001, 4096]) {
        for (const p of [0.1, 0.5]) {
          for (const mode of [0, 1, 2] as const) {
            for (const inPlace of [false, true]) {
              const src = randomArray(n, seed++, -3, 3);
              if (n > 2) src[1] = -0;
              const dst0 = randomArray(n, seed++);
              if (n > 3) dst0[2] = -0;
              const addend = mode === 2 ? randomArray(n, seed++) : null;
              const state = [0x12345678, 0x9abcdef0, seed++, 0xdeadbeef];
              const run = (k: WasmKernels) => {
                const s = inPlace ? src.slice() : src;
                const d = inPlace ? s : dst0.slice();
                const st = state.slice();
                k.dropout(s, d, addend, p, mode, st);
                return { d, st };
              };
              const w = run(wasm);
              const nat = run(native);
              const what = `dropout n ${n} p ${p} mode ${mode}${inPlace ? " in place" : ""}`;
              bitsEqual(nat.d, w.d, what);
              expect(nat.st, `${what}: state`).toEqual(w.st);
            }
          }
        }
      }
    });

    it("LRU recurrence forward, backward and the λ gradient", () => {
      let seed = 1200;
      for (const C of [2, 6, 8, 64]) {
        const r = rng(seed++);
        const lengths = Int32Array.from({ length: 9 }, () => 1 + Math.floor(r(0, 30)));
        const rowStart = new Int32Array(lengths.length);
        let rows = 0;
        lengths.forEach((n, s) => {
          rowStart[s] = rows;
          rows += n;
        });
        const mask = Uint8Array.from({ length: rows }, () => (r(0, 1) < 0.85 ? 1 : 0));
        const run = Uint8Array.from({ length: lengths.length }, (_, s) => (s === 3 ? 0 : 1));
        const seqs = { rowStart, length: lengths, mask, run };
        const lambda = randomArray(2 * C, seed++, -0.9, 0.9);
        const h0 = randomArray(rows * 2 * C, seed++);
        const g0 = randomArray(rows * 2 * C, seed++);
        const go = (k: WasmKernels) => {
          const h = h0.slice();
          k.recurrenceForward(h, lambda, seqs, C);
          const g = g0.slice();
          const gLam = Float64Array.from({ length: 2 * C }, (_, i) => i * 0.1);
          k.recurrenceBackward(g, h, lambda, seqs, C, gLam);
          return { h, g, gLam };
        };
        const w = go(wasm);
        const n = go(native);
        bitsEqual(n.h, w.h, `recurrenceForward C ${C}`);
        bitsEqual(n.g, w.g, `recurrenceBackward C ${C}`);
        expect(Array.from(n.gLam), `λ gradient C ${C}`).toEqual(Array.from(w.gLam));
      }
    });

    it("AdamW: every parameter in one call, odd lengths", () => {
      let seed = 1500;
      const sizes = [1, 3, 4, 5, 8, 64, 1001];
      const make = () =>
        sizes.map((n, i) => ({
          p: randomArray(n, seed + 10 * i),
          grad: randomArray(n, seed + 10 * i + 1, -1e-3, 1e-3),
          m: randomArray(n, seed + 10 * i + 2, -0.1, 0.1),
          v: randomArray(n, seed + 10 * i + 3, 0, 1e-6),
          decayFactor: i % 2 === 0 ? 1 : 1 - 1e-3 * 0.01,
          stepSize: 1e-3 / (1 - 0.9 ** (i + 1)),
          bc2Sqrt: Math.sqrt(1 - 0.999 ** (i + 1)),
        }));
      // eps comparable to sqrt(v)/bc2, so that each term shows in the float32 results.
      const hyper = { oneMinusBeta1: 1 - 0.9, beta2: 0.999, oneMinusBeta2: 1 - 0.999, eps: 1e-3 };
      const w = make();
      const n = make();
      seed += 100;
      for (let step = 0; step < 3; step++) {
        wasm.adamw(w, hyper);
        native.adamw(n, hyper);
      }
      n.forEach((q, i) => {
        bitsEqual(q.p, w[i]!.p, `adamw p[${i}]`);
        bitsEqual(q.m, w[i]!.m, `adamw m[${i}]`);
        bitsEqual(q.v, w[i]!.v, `adamw v[${i}]`);
      });
    });

    it("layer norm forward and backward", () => {
      let seed = 1700;
      for (const [rows, cols] of [
        [1, 1],
        [3, 3],
        [5, 4],
        [7, 8],
        [9, 12],
        [33, 64],
        [17, 70],
        [300, 64],
      ] as [number, number][]) {
        const x = randomArray(rows * cols, seed++, -3, 3);
        const gamma = randomArray(cols, seed++, 0.5, 1.5);
        const beta = randomArray(cols, seed++);
        const dy = randomArray(rows * cols, seed++);
        const dGamma0 = randomArray(cols, seed++);
        const dBeta0 = randomArray(cols, seed++);
        const go = (k: WasmKernels) => {
          const y = new Float32Array(rows * cols);
          const mean = new Float32Array(rows);
          const rstd = new Float32Array(rows);
          k.layerNormForward(x, gamma, beta, rows, cols, 1e-5, y, mean, rstd);
          const dx = new Float32Array(rows * cols);
          const dGamma = dGamma0.slice();
          const dBeta = dBeta0.slice();
          k.layerNormBackward(dy, x, gamma, mean, rstd, rows, cols, dx, dGamma, dBeta);
          return { y, mean, rstd, dx, dGamma, dBeta };
        };
        const w = go(wasm);
        const n = go(native);
        for (const key of ["y", "mean", "rstd", "dx", "dGamma", "dBeta"] as const) {
          bitsEqual(n[key], w[key], `layerNorm ${rows}×${cols} ${key}`);
        }
      }
    });

    it("linearCrossEntropy: loss, count, dH, dW, dBias", () => {
      // [N, D, V, share of ignored rows, bias, grads]
      const cases: [number, number, number, number, boolean, "all" | "dH" | "dW" | "none"][] = [
        [1, 1, 1, 0, true, "all"],
        [3, 5, 4, 0, false, "all"],
        [37, 13, 29, 0.3, true, "all"],
        [40, 64, 517, 0.5, true, "all"],
        [70, 70, 1003, 0.2, false, "all"],
        [150, 64, 3651, 0.45, true, "all"],
        [33, 24, 300, 0.1, true, "dH"],
        [33, 24, 300, 0.1, false, "dW"],
        [33, 24, 300, 0.1, true, "none"],
        [12, 8, 64, 1, true, "all"],
      ];
      let seed = 900;
      for (const [N, D, V, ignored, withBias, grads] of cases) {
        const r = rng(seed++);
        const H = randomArray(N * D, seed++, -2, 2);
        const W = randomArray(V * D, seed++, -0.5, 0.5);
        const bias = withBias ? randomArray(V, seed++, -1, 1) : null;
        const labels = Int32Array.from({ length: N }, () => (r(0, 1) < ignored ? -100 : Math.floor(r(0, V))));
        if (ignored < 1) labels[0] = V - 1; // the last item, in the scalar tail when V is not a multiple of 4
        const run = (k: WasmKernels) => {
          const dH = grads === "all" || grads === "dH" ? new Float32Array(N * D).fill(Number.NaN) : undefined;
          const dW = grads === "all" || grads === "dW" ? randomArray(V * D, 77) : undefined;
          const dBias = grads === "all" && bias ? randomArray(V, 78) : undefined;
          const out = k.linearCrossEntropy({ H, W, bias, labels, N, D, V, ignoreIndex: -100, dH, dW, dBias });
          return { ...out, dH, dW, dBias };
        };
        const w = run(wasm);
        const n = run(native);
        const what = `linearCrossEntropy N ${N} D ${D} V ${V} ignored ${ignored} bias ${withBias} grads ${grads}`;
        expect(n.count, what).toBe(w.count);
        expect(Object.is(n.loss, w.loss), `${what}: loss ${n.loss} vs ${w.loss}`).toBe(true);
        if (w.dH) bitsEqual(n.dH!, w.dH, `${what}: dH`);
        if (w.dW) bitsEqual(n.dW!, w.dW, `${what}: dW`);
        if (w.dBias) bitsEqual(n.dBias!, w.dBias, `${what}: dBias`);
      }
    });
  });
});
