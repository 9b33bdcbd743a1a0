import { afterAll, describe, expect, it } from "vitest";
import { syntheticDataset } from "../../../src/data/synthetic.js";
import { TrainingBatches } from "../../../src/retrievers/batches.js";
import { createRetriever } from "../../../src/retrievers/registry.js";
import { llamaRecNoDecay } from "../../../src/retrievers/weight-decay.js";
import type { AdamWParam, Kernels } from "../../../src/tensor/kernels/api.js";
import { whileHeld } from "../../../src/tensor/kernels/hold.js";
import { kernels, setKernels } from "../../../src/tensor/kernels/index.js";
import { createWasmKernels, type WasmKernels } from "../../../src/tensor/kernels/wasm.js";
import { AdamW } from "../../../src/tensor/optim/adamw.js";
import { clipGradNorm } from "../../../src/tensor/optim/clip.js";
import { randomArray } from "./compare.js";

// The hold window (Kernels.hold, whileHeld): inside it the helper thread polls for calls and calls are split
// from smaller sizes. Split calls must give the 1-thread bits, and the window must end: no polling after it,
// also when the code inside it throws.

const one = createWasmKernels({ threads: 1 });
// Every call inside a hold is offered to the helper (held thresholds 1: the mid-size paths, e.g. GEMMs in 4
// parts); outside a hold only huge ones. On a busy machine the helper may be preempted while polling, and the
// window then falls back to the base thresholds: the bits must not change either way.
const held = () => createWasmKernels({ threads: 2, heldMinFlops: 1, heldMinElements: 1 });
const two = held();
// Every call split whatever the load (base thresholds 1), and the helper does all of its share before this
// thread starts: the helper's own results (and the AdamW half it takes) must be right.
const helperFirst = () =>
  createWasmKernels({ threads: 2, parallelMinFlops: 1, parallelMinElements: 1, helperFirst: true });
const first = helperFirst();
afterAll(() => {
  for (const k of [one, two, first]) k.dispose();
});

const bits = (a: Float32Array | Float64Array) =>
  Array.from(new Uint32Array(a.buffer, a.byteOffset, a.byteLength / 4));

/**
 * The same bits in every array, failing with the first difference (a deep-equality diff of arrays this long
 * takes minutes to format).
 */
function expectSameBits(got: number[][], want: number[][], what = "array"): void {
  expect(got.length, `${what}: count`).toBe(want.length);
  got.forEach((g, a) => {
    const w = want[a]!;
    expect(g.length, `${what} ${a}: length`).toBe(w.length);
    const i = g.findIndex((x, j) => x !== w[j]);
    if (i >= 0) expect.fail(`${what} ${a}: element ${i} has bits ${g[i]}, the 1-thread result ${w[i]}`);
  });
}

/** Runs `fn` on the 1-thread backend and, in a hold window, on each 2-thread backend: the same bits. */
function sameBits(fn: (k: WasmKernels) => (Float32Array | Float64Array)[]): void {
  const want = fn(one).map(bits);
  for (const k of [two, first]) {
    const before = k.helperCalls();
    k.hold(true);
    let got: number[][];
    try {
      got = fn(k).map(bits);
    } finally {
      k.hold(false);
    }
    expectSameBits(got, want, `${k.threads} threads, output`);
    // The split path ran (the other backend's helper may legitimately be too late for small calls).
    if (k === first) expect(k.helperCalls()).toBeGreaterThan(before);
  }
}

describe("split calls in a hold window equal the 1-thread results bit for bit", () => {
  it("gemm and linearForward (the 4-part split of mid-size calls), every orientation", () => {
    for (const [M, N, K] of [
      [37, 29, 70],
      [300, 21, 64],
      [20, 300, 257],
    ] as const) {
      for (const tA of [false, true]) {
        for (const tB of [false, true]) {
          sameBits((k) => {
            const C = randomArray(M * N, 3);
            k.gemm(tA, tB, M, N, K, 0.5, randomArray(M * K, 1), randomArray(K * N, 2), 1, C);
            return [C];
          });
        }
      }
      sameBits((k) => {
        const out = new Float32Array(M * N);
        k.linearForward(randomArray(M * K, 4), randomArray(N * K, 5), randomArray(N, 6), M, K, N, out);
        return [out];
      });
    }
  });

  it("GELU, layer norm, addScaled", () => {
    const n = 4 * 1031 + 3;
    sameBits((k) => {
      const x = randomArray(n, 7, -4, 4);
      const y = new Float32Array(n);
      const dx = new Float32Array(n);
      k.geluForward(x, y);
      k.geluBackward(randomArray(n, 8), x, dx);
      const s = new Float32Array(n);
      k.addScaled(y, dx, -1, s);
      return [y, dx, s];
    });
    const rows = 333;
    const cols = 24;
    sameBits((k) => {
      const x = randomArray(rows * cols, 9);
      const gamma = randomArray(cols, 10);
      const y = new Float32Array(rows * cols);
      const mean = new Float32Array(rows);
      const rstd = new Float32Array(rows);
      k.layerNormForward(x, gamma, randomArray(cols, 11), rows, cols, 1e-5, y, mean, rstd);
      const dx = new Float32Array(rows * cols);
      const dGamma = randomArray(cols, 12);
      const dBeta = randomArray(cols, 13);
      k.layerNormBackward(randomArray(rows * cols, 14), x, gamma, mean, rstd, rows, cols, dx, dGamma, dBeta);
      return [y, mean, rstd, dx, dGamma, dBeta];
    });
  });

  it("AdamW cut into two halves (inside a parameter, odd lengths, in place and copied)", () => {
    for (const sizes of [[7, 1000, 3, 1], [1, 2], [5001], [40, 40, 41]]) {
      sameBits((k) => {
        const params: AdamWParam[] = sizes.map((n, i) => {
          const resident = i % 2 === 0;
          const buf = (seed: number, lo = -1) => {
            const a = randomArray(n, seed + 10 * i, lo, 1);
            if (!resident) return a;
            const r = k.resident(n);
            r.set(a);
            return r;
          };
          return {
            p: buf(1),
            grad: buf(2),
            m: buf(3),
            v: buf(4, 0),
            decayFactor: 1 - 1e-5 * i,
            stepSize: 1e-3,
            bc2Sqrt: 0.3,
          };
        });
        k.adamw(params, { oneMinusBeta1: 0.1, beta2: 0.999, oneMinusBeta2: 0.001, eps: 1e-9 });
        return params.flatMap((q) => [q.p, q.m, q.v]);
      });
    }
  });

  it("LRURec training steps (recurrence, dropout, GELU, layer norm, GEMMs, cross-entropy, AdamW) under whileHeld", () => {
    const { dataset } = syntheticDataset({
      numUsers: 60,
      numItems: 90,
      numClusters: 5,
      minSeqLength: 5,
      maxSeqLength: 30,
      seed: 3,
    });
    const batches = new TrainingBatches(dataset.train, {
      batchSize: 8,
      maxLen: 24,
      slidingWindow: 1,
      seed: 1,
    });
    const train = (k: WasmKernels) => {
      const before = kernels();
      setKernels(k);
      try {
        const model = createRetriever("lru", { numItems: dataset.numItems, seed: 5, dropout: 0.2 });
        const params = model.parameters();
        const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0.01, eps: 1e-9, noDecay: llamaRecNoDecay });
        const losses: number[] = [];
        for (let i = 0; i < 3; i++) {
          losses.push(
            whileHeld(() => {
              model.setTraining(true);
              opt.zeroGrad();
              const loss = model.lossAndBackward(batches.batch(0, i));
              clipGradNorm(params, 5);
              opt.step();
              return loss;
            }),
          );
        }
        return { losses, weights: params.map((p) => bits(p.data)) };
      } finally {
        setKernels(before);
      }
    };
    const want = train(one);
    expect(want.losses.every(Number.isFinite)).toBe(true);
    // The default backend (native kernels where the addon is built) and pure wasm, which give the same bits.
    for (const native of [undefined, false]) {
      const makes = [
        () => createWasmKernels({ threads: 2, heldMinFlops: 1, heldMinElements: 1, native }),
        () =>
          createWasmKernels({
            threads: 2,
            parallelMinFlops: 1,
            parallelMinElements: 1,
            helperFirst: true,
            native,
          }),
      ];
      for (const [i, make] of makes.entries()) {
        const k = make();
        try {
          const got = train(k);
          expect(got.losses).toEqual(want.losses);
          expectSameBits(got.weights, want.weights, "parameter");
          if (i === 1) expect(k.helperCalls()).toBeGreaterThan(20);
        } finally {
          k.dispose();
        }
      }
    }
  });
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits up to `ms` for `cond` (a busy machine may not run the helper for a while). */
async function eventually(cond: () => boolean, ms = 3000): Promise<boolean> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    if (cond()) return true;
    await sleep(2);
  }
  return cond();
}

/** Waits up to `ms` for the helper to stop polling. */
async function stopsPolling(k: WasmKernels, ms = 500): Promise<boolean> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    if (!k.helperSpinning()) return true;
    await sleep(2);
  }
  return !k.helperSpinning();
}

describe("the hold window", () => {
  it("keeps the helper polling while held and stops it when released: no CPU burnt afterwards", async () => {
    const k = held();
    try {
      k.hold(true);
      // It polls (unless the machine is so busy that it was preempted: then it stopped polling).
      expect(await eventually(() => k.helperSpinMs() > 5 || k.helperPreemptions() > 0)).toBe(true);
      k.hold(false);
      expect(await stopsPolling(k)).toBe(true);
      const spun = k.helperSpinMs();
      const cpu = process.cpuUsage();
      await sleep(150);
      const used = process.cpuUsage(cpu);
      expect((used.user + used.system) / 1000).toBeLessThan(75); // a polling helper would burn ~150 ms
      expect(k.helperSpinMs()).toBe(spun);
    } finally {
      k.dispose();
    }
  });

  it("nests, and a hold left on stops polling after holdIdleMs without calls", async () => {
    const k = createWasmKernels({ threads: 2, heldMinFlops: 1, heldMinElements: 1, holdIdleMs: 30 });
    try {
      k.hold(true);
      k.hold(true);
      k.hold(false);
      const spun = k.helperSpinMs();
      const preempted = k.helperPreemptions();
      // Still held once: it polls on (or was preempted)…
      expect(
        await eventually(
          () => k.helperSpinning() || k.helperSpinMs() > spun || k.helperPreemptions() > preempted,
        ),
      ).toBe(true);
      expect(await stopsPolling(k, 400)).toBe(true); // … but only for holdIdleMs
      // A call wakes it; it polls again after the call, then gives up again.
      const y = new Float32Array(4096);
      k.geluForward(randomArray(4096, 1), y);
      k.hold(false);
      expect(await stopsPolling(k)).toBe(true);
    } finally {
      k.dispose();
    }
  });

  it("whileHeld releases when its function throws or its promise rejects, and calls still work after", async () => {
    const k = held();
    const before = kernels();
    setKernels(k);
    try {
      expect(() =>
        whileHeld(() => {
          k.geluForward(randomArray(4096, 2), new Float32Array(4096));
          throw new Error("boom");
        }),
      ).toThrow("boom");
      expect(await stopsPolling(k)).toBe(true);
      await expect(
        whileHeld(async () => {
          await sleep(5);
          throw new Error("later");
        }),
      ).rejects.toThrow("later");
      expect(await stopsPolling(k)).toBe(true);
      // The depth is back to 0: a new window starts polling and ends it again; no deadlock.
      const y = new Float32Array(4096);
      const spun = k.helperSpinMs();
      const preempted = k.helperPreemptions();
      await whileHeld(async () => {
        k.geluForward(randomArray(4096, 3), y);
        await eventually(() => k.helperSpinMs() > spun || k.helperPreemptions() > preempted);
      });
      expect(k.helperSpinMs() > spun || k.helperPreemptions() > preempted).toBe(true);
      expect(await stopsPolling(k)).toBe(true);
    } finally {
      setKernels(before);
      k.dispose();
    }
  });

  it("an exception inside a split call in a hold window is rethrown and leaves the backend usable", () => {
    const k = held();
    try {
      k.hold(true);
      expect(() =>
        k.gemm(
          false,
          false,
          40,
          40,
          40,
          1,
          new Float32Array(10),
          new Float32Array(1600),
          0,
          new Float32Array(1600),
        ),
      ).toThrow(RangeError);
      const C = new Float32Array(40 * 40);
      k.gemm(false, false, 40, 40, 40, 1, randomArray(1600, 1), randomArray(1600, 2), 0, C);
      k.hold(false);
      const C1 = new Float32Array(40 * 40);
      one.gemm(false, false, 40, 40, 40, 1, randomArray(1600, 1), randomArray(1600, 2), 0, C1);
      expectSameBits([bits(C)], [bits(C1)]);
    } finally {
      k.dispose();
    }
  });

  it("is a no-op for backends without it (reference) and on one thread", () => {
    const k: Kernels = one;
    expect(whileHeld(() => 7)).toBe(7);
    k.hold?.(true);
    k.hold?.(false);
    expect(one.helperSpinning()).toBe(false);
    expect(one.helperCalls()).toBe(0);
  });
});
