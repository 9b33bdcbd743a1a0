import { describe, expect, it } from "vitest";
import { llamaRecNoDecay } from "../../src/retrievers/weight-decay.js";
import {
  createWasmKernels,
  type Kernels,
  kernels,
  referenceKernels,
  setKernels,
} from "../../src/tensor/kernels/index.js";
import { AdamW } from "../../src/tensor/optim/adamw.js";
import { clipGradNorm } from "../../src/tensor/optim/clip.js";
import { Rng } from "../../src/tensor/rng.js";
import { Parameter } from "../../src/tensor/tensor.js";

function param(name: string, values: number[], grad: number[] | null): Parameter {
  const p = new Parameter(name, Float32Array.from(values), [values.length]);
  p.grad = grad ? Float32Array.from(grad) : null;
  return p;
}

describe("AdamW", () => {
  it("first step matches torch's formula worked by hand", () => {
    // lr 0.1, wd 0.01, β (0.9, 0.999): p ← p(1−lr·wd); m = 0.1g; v = 0.001g²;
    // p ← p − (lr/0.1)·m / (sqrt(v)/sqrt(0.001) + eps) = p(1−0.001) − g/|g|·0.1/0.1·… worked below.
    const w = param("w", [1, -2], [0.5, 0.1]);
    const opt = new AdamW([w], { lr: 0.1, weightDecay: 0.01 });
    opt.step();
    // 1·0.999 − 0.05/(0.5+1e-8) = 0.899;  −2·0.999 − 0.01/(0.1+1e-8) = −2.098
    expect(w.data[0]).toBeCloseTo(0.899, 6);
    expect(w.data[1]).toBeCloseTo(-2.098, 6);
  });

  it("three steps match a scalar float64 transcription of torch.optim.AdamW", () => {
    const grads = [
      [0.3, -1.2, 0.0],
      [-0.7, 0.4, 2.0],
      [0.1, 0.1, -0.5],
    ];
    const init = [0.5, -0.25, 1.5];
    const w = param("layer.weight", init, grads[0]!);
    const b = param("layer.bias", init, grads[0]!);
    const opt = new AdamW([w, b], {
      lr: 0.01,
      weightDecay: 0.1,
      betas: [0.8, 0.95],
      eps: 1e-6,
      noDecay: llamaRecNoDecay,
    });
    const expected = (decay: number) => {
      const p = [...init];
      const m = [0, 0, 0];
      const v = [0, 0, 0];
      for (let t = 1; t <= 3; t++) {
        for (let i = 0; i < 3; i++) {
          const g = grads[t - 1]![i]!;
          p[i]! *= 1 - 0.01 * decay;
          m[i] = 0.8 * m[i]! + 0.2 * g;
          v[i] = 0.95 * v[i]! + 0.05 * g * g;
          const denom = Math.sqrt(v[i]!) / Math.sqrt(1 - 0.95 ** t) + 1e-6;
          p[i]! -= ((0.01 / (1 - 0.8 ** t)) * m[i]!) / denom;
        }
      }
      return p;
    };
    for (let t = 0; t < 3; t++) {
      w.grad = Float32Array.from(grads[t]!);
      b.grad = Float32Array.from(grads[t]!);
      opt.step();
    }
    expected(0.1).forEach((v, i) => {
      expect(w.data[i]).toBeCloseTo(v, 6);
    });
    expected(0).forEach((v, i) => {
      expect(b.data[i]).toBeCloseTo(v, 6);
    });
    expect(opt.groups()).toEqual({ decay: ["layer.weight"], noDecay: ["layer.bias"] });
  });

  it("uses the official no-decay rule: bias and layer_norm names", () => {
    expect(llamaRecNoDecay("model.bias")).toBe(true);
    expect(llamaRecNoDecay("embedding.layer_norm.weight")).toBe(true);
    expect(llamaRecNoDecay("model.lru_blocks.0.lru_layer.in_proj.bias.real")).toBe(true);
    expect(llamaRecNoDecay("model.lru_blocks.0.lru_layer.params_log")).toBe(false);
    expect(llamaRecNoDecay("embedding.token.weight")).toBe(false);
  });

  it("skips parameters without a gradient and zeroGrad clears gradients", () => {
    const a = param("a", [1], null);
    const c = param("c", [1], [1]);
    const opt = new AdamW([a, c], { lr: 0.1 });
    opt.step();
    expect(a.data[0]).toBe(1);
    expect(c.data[0]).not.toBe(1);
    opt.zeroGrad();
    expect(c.grad![0]).toBe(0);
  });

  it("state round trip resumes identically; bad state is rejected without side effects", () => {
    const mk = () => param("w", [0.5, -0.5], [0.2, -0.3]);
    const w1 = mk();
    const o1 = new AdamW([w1], { lr: 0.05 });
    o1.step();
    const saved = o1.stateDict();
    const w2 = param("w", [...w1.data], [0.2, -0.3]);
    const o2 = new AdamW([w2], { lr: 0.05 });
    o2.loadStateDict(saved);
    o1.step();
    o2.step();
    expect([...w2.data]).toEqual([...w1.data]);
    const other = new AdamW([param("x", [1], [1])]);
    expect(() => other.loadStateDict(saved)).toThrow(/no entry for x/);
  });
});

describe("clipGradNorm", () => {
  it("scales all gradients by maxNorm/(norm+1e-6) when the global norm is larger", () => {
    const a = param("a", [0, 0], [3, 0]);
    const b = param("b", [0], [4]);
    const norm = clipGradNorm([a, b], 1);
    expect(norm).toBeCloseTo(5, 10);
    const coef = 1 / (5 + 1e-6);
    expect(a.grad![0]).toBeCloseTo(3 * coef, 7);
    expect(b.grad![0]).toBeCloseTo(4 * coef, 7);
  });
  it("leaves small gradients and null gradients alone", () => {
    const a = param("a", [0], [0.3]);
    const n = param("n", [0], null);
    expect(clipGradNorm([a, n], 1)).toBeCloseTo(0.3, 6);
    expect(a.grad![0]).toBeCloseTo(0.3, 7);
    expect(n.grad).toBeNull();
  });
});

describe("AdamW in the wasm kernel", () => {
  it("updates parameters and moments bit for bit as the JS loop, decayed and undecayed groups, odd sizes", () => {
    const run = (backend: Kernels) => {
      const before = kernels();
      setKernels(backend);
      try {
        const params = [7, 64, 1, 33].map((n, j) => {
          const rng = new Rng(j + 1);
          const p = new Parameter(j === 1 ? "layer_norm.weight" : `w${j}`, new Float32Array(n), [n]);
          for (let i = 0; i < n; i++) p.data[i] = rng.uniformIn(-1, 1);
          return p;
        });
        const opt = new AdamW(params, {
          lr: 1e-2,
          weightDecay: 0.1,
          eps: 1e-9,
          noDecay: (n) => n.includes("layer_norm"),
        });
        const rng = new Rng(9);
        for (let step = 0; step < 4; step++) {
          // The last parameter gets no gradient in the first step: its step count lags, as torch's.
          for (const p of params.slice(0, step === 0 ? 3 : 4)) {
            const g = p.gradBuffer();
            for (let i = 0; i < g.length; i++) g[i] = rng.uniformIn(-2, 2);
          }
          opt.step();
        }
        return {
          p: params.map((p) => [...p.data]),
          state: [...opt.stateDict().tensors.values()].map((t) => [...t.data]),
        };
      } finally {
        setKernels(before);
      }
    };
    const k = createWasmKernels({ threads: 1 });
    let calls = 0;
    const { adamw } = k;
    k.adamw = (...args) => {
      calls++;
      adamw(...args);
    };
    expect(run(k)).toEqual(run(referenceKernels));
    expect(calls).toBe(4);
    k.dispose();
  });
});
