import { describe, expect, it } from "vitest";
import { createLru, type LruRec, planRows } from "../../src/retrievers/lru.js";
import type { SequenceBatch } from "../../src/retrievers/types.js";
import { gradCheck } from "../../src/tensor/gradcheck.js";
import { isArenaBuffer } from "../../src/tensor/memory.js";
import { linearCrossEntropy } from "../../src/tensor/ops/cross_entropy.js";
import { sumAll } from "../../src/tensor/ops/reduce.js";
import { Rng } from "../../src/tensor/rng.js";
import { erf } from "../../src/tensor/special.js";
import { backward } from "../../src/tensor/tape.js";
import { Tensor } from "../../src/tensor/tensor.js";

const NUM_ITEMS = 7;
const D = 4;
const L = 5;

/**
 * Left-padded rows as the official training loader builds them (a label one position before the tokens),
 * plus one row with a 0 inside the sequence, which takes the official block scan instead of the sequential
 * fast path.
 */
function tinyBatch(): SequenceBatch {
  const tokens = Int32Array.from([0, 0, 3, 1, 4, 2, 7, 5, 6, 1, 0, 0, 0, 0, 6, 3, 0, 2, 5, 1]);
  const labels = Int32Array.from([0, 3, 1, 4, 2, 7, 5, 6, 1, 3, 0, 0, 0, 6, 2, 0, 2, 5, 1, 4]);
  return { batchSize: 4, seqLen: L, tokens, labels };
}
const B = 4;

/** Spread weights beyond the ±0.04 init so the check exercises every non-linearity. */
function randomiseWeights(model: LruRec, seed: number): void {
  const rng = new Rng(seed);
  for (const [name, p] of model.namedParameters()) {
    for (let i = 0; i < p.size; i++) {
      if (name.endsWith("params_log")) continue; // keep |λ| < 1 from the official init
      p.data[i] = name.includes("layer_norm.weight") ? rng.uniformIn(0.5, 1.5) : rng.uniformIn(-0.6, 0.6);
    }
  }
}

type W = Map<string, Float32Array>;

/**
 * Float64 transcription of the official LRURec forward (eval mode) on the full batch padded to a power of
 * two, with the literal lru_parallel loop. Returns scores [B, L, V].
 */
function officialForward(
  w: W,
  tokens: Int32Array,
  B: number,
  Lq: number,
  d: number,
  blocks: number,
): number[][][] {
  const V = w.get("model.bias")!.length;
  const C = 2 * d;
  const get = (n: string) => w.get(n)!;
  const ln = (x: number[], g: Float32Array, b: Float32Array) => {
    const mu = x.reduce((a, v) => a + v, 0) / x.length;
    const va = x.reduce((a, v) => a + (v - mu) ** 2, 0) / x.length;
    return x.map((v, i) => ((v - mu) / Math.sqrt(va + 1e-5)) * g[i]! + b[i]!);
  };
  const lin = (x: number[], Wt: Float32Array, b: Float32Array | null, out: number) =>
    Array.from({ length: out }, (_, o) =>
      x.reduce((a, v, i) => a + v * Wt[o * x.length + i]!, b ? b[o]! : 0),
    );
  const gelu = (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2));
  const P = 2 ** Math.ceil(Math.log2(Lq));
  const E = get("embedding.token.weight");
  const result: number[][][] = [];
  for (let b = 0; b < B; b++) {
    const mask: number[] = [];
    let x: number[][] = [];
    for (let v = 0; v < P; v++) {
      const t = v - (P - Lq);
      const tok = t >= 0 ? tokens[b * Lq + t]! : -1;
      mask.push(tok > 0 ? 1 : 0);
      x.push(
        tok < 0
          ? new Array(d).fill(0)
          : ln(
              Array.from(E.subarray(tok * d, tok * d + d)),
              get("embedding.layer_norm.weight"),
              get("embedding.layer_norm.bias"),
            ),
      );
    }
    for (let k = 0; k < blocks; k++) {
      const pre = `model.lru_blocks.${k}.lru_layer.`;
      const pl = get(`${pre}params_log`);
      const lam = Array.from({ length: C }, (_, c) => {
        const m = Math.exp(-Math.exp(pl[c]!));
        const th = Math.exp(pl[C + c]!);
        return [m * Math.cos(th), m * Math.sin(th)] as [number, number];
      });
      const gamma = Array.from({ length: C }, (_, c) => Math.exp(pl[2 * C + c]!));
      let h = x.map((xv) => {
        const re = lin(xv, get(`${pre}in_proj.weight.real`), get(`${pre}in_proj.bias.real`), C);
        const im = lin(xv, get(`${pre}in_proj.weight.imag`), get(`${pre}in_proj.bias.imag`), C);
        return re.map((r, c) => [r * gamma[c]!, im[c]! * gamma[c]!] as [number, number]);
      });
      const cm = (a: [number, number], z: [number, number]): [number, number] => [
        a[0] * z[0] - a[1] * z[1],
        a[0] * z[1] + a[1] * z[0],
      ];
      let lamb = [lam];
      for (let i = 1; 2 ** i <= P; i++) {
        const l = 2 ** i;
        if (i > 1) lamb = [...lamb, ...lamb.map((p) => p.map((z, c) => cm(z, lamb[lamb.length - 1]![c]!)))];
        h = h.map((row) => row.map((z) => [z[0], z[1]] as [number, number]));
        for (let s0 = 0; s0 < P; s0 += l) {
          const s = s0 + l / 2 - 1;
          for (let j = 0; j < l / 2; j++) {
            for (let c = 0; c < C; c++) {
              const add = cm(lamb[j]![c]!, h[s]![c]!);
              h[s + 1 + j]![c] = [
                h[s + 1 + j]![c]![0] + add[0] * mask[s]!,
                h[s + 1 + j]![c]![1] + add[1] * mask[s]!,
              ];
            }
          }
        }
      }
      x = x.map((xv, v) => {
        const hr = h[v]!.map((z) => z[0]);
        const hi = h[v]!.map((z) => z[1]);
        const a = lin(hr, get(`${pre}out_proj.weight.real`), get(`${pre}out_proj.bias.real`), d);
        const bI = lin(hi, get(`${pre}out_proj.weight.imag`), null, d);
        const y = a.map((r, i) => r - bI[i]! + xv[i]!);
        return ln(y, get(`${pre}layer_norm.weight`), get(`${pre}layer_norm.bias`));
      });
      const ff = `model.lru_blocks.${k}.feed_forward.`;
      x = x.map((xv) => {
        const inner = lin(xv, get(`${ff}w_1.weight`), get(`${ff}w_1.bias`), 4 * d).map(gelu);
        const y = lin(inner, get(`${ff}w_2.weight`), get(`${ff}w_2.bias`), d).map((v, i) => v + xv[i]!);
        return ln(y, get(`${ff}layer_norm.weight`), get(`${ff}layer_norm.bias`));
      });
    }
    const bias = get("model.bias");
    result.push(x.slice(P - Lq).map((xv) => lin(xv, E, bias, V)));
  }
  return result;
}

function weightsOf(model: LruRec): W {
  return new Map(model.namedParameters().map(([n, p]) => [n, p.data]));
}

describe("LRURec", () => {
  it("uses the official parameter names and shapes", () => {
    const m = createLru({ numItems: NUM_ITEMS, hiddenDim: D, numBlocks: 2, dropout: 0.1, seed: 1 });
    const shapes = Object.fromEntries(m.namedParameters().map(([n, p]) => [n, p.shape]));
    expect(shapes["embedding.token.weight"]).toEqual([8, 4]);
    expect(shapes["model.lru_blocks.1.lru_layer.params_log"]).toEqual([3, 8]);
    expect(shapes["model.lru_blocks.0.lru_layer.in_proj.weight.imag"]).toEqual([8, 4]);
    expect(shapes["model.lru_blocks.0.lru_layer.out_proj.weight.real"]).toEqual([4, 8]);
    expect(shapes["model.lru_blocks.0.feed_forward.w_1.weight"]).toEqual([16, 4]);
    expect(shapes["model.bias"]).toEqual([8]);
    expect(m.parameters().map((p) => p.name)).toContain("model.lru_blocks.1.feed_forward.layer_norm.bias");
  });

  it("initialises as the official code: truncated normal ±0.04, ν/θ/γ from the ring [0.8, 0.99]", () => {
    const m = createLru({ numItems: 50, hiddenDim: 16, seed: 3 });
    for (const [name, p] of m.namedParameters()) {
      if (name.includes("layer_norm")) {
        expect([...p.data].every((v) => v === (name.endsWith("weight") ? 1 : 0))).toBe(true);
      } else if (name.endsWith("params_log")) {
        const C = p.shape[1]!;
        for (let c = 0; c < C; c++) {
          const modulus = Math.exp(-Math.exp(p.data[c]!));
          const theta = Math.exp(p.data[C + c]!);
          expect(modulus).toBeGreaterThanOrEqual(0.8 - 1e-6);
          expect(modulus).toBeLessThanOrEqual(0.99 + 1e-6);
          expect(theta).toBeLessThan(2 * Math.PI);
          expect(Math.exp(p.data[2 * C + c]!)).toBeCloseTo(Math.sqrt(1 - modulus ** 2), 5);
        }
      } else {
        expect(p.data.every((v) => Math.abs(v) <= 0.04)).toBe(true);
        expect(p.data.some((v) => v !== 0)).toBe(true);
      }
    }
  });

  it("scoreNext and the loss equal a float64 transcription of the official forward", () => {
    const m = createLru({ numItems: NUM_ITEMS, hiddenDim: D, numBlocks: 2, dropout: 0.3, seed: 2 });
    randomiseWeights(m, 5);
    const batch = tinyBatch();
    const want = officialForward(weightsOf(m), batch.tokens, B, L, D, 2);
    const got = m.scoreNext(batch.tokens, B, L);
    expect(got.length).toBe(B * (NUM_ITEMS + 1));
    for (let b = 0; b < B; b++) {
      for (let v = 0; v <= NUM_ITEMS; v++) expect(got[b * 8 + v]).toBeCloseTo(want[b]![L - 1]![v]!, 4);
    }
    // Mean cross-entropy over labelled positions, ignore_index 0.
    let sum = 0;
    let count = 0;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < L; t++) {
        const label = batch.labels[b * L + t]!;
        if (label === 0) continue;
        const z = want[b]![t]!;
        const mx = Math.max(...z);
        sum += mx + Math.log(z.reduce((a, v) => a + Math.exp(v - mx), 0)) - z[label]!;
        count++;
      }
    }
    m.setTraining(false);
    expect(m.loss(batch)).toBeCloseTo(sum / count, 4);
    const before = m.parameters().map((p) => p.grad);
    expect(before.every((g) => g === null)).toBe(true);
    expect(m.lossAndBackward(batch)).toBeCloseTo(sum / count, 4);
  });

  it("gives the same scores whatever the amount of left padding", () => {
    const m = createLru({ numItems: NUM_ITEMS, hiddenDim: D, seed: 4 });
    randomiseWeights(m, 6);
    const short = m.scoreNext(Int32Array.from([0, 3, 1, 4, 2]), 1, 5);
    const long = m.scoreNext(Int32Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 1, 4, 2]), 1, 15);
    short.forEach((v, i) => {
      expect(long[i]).toBeCloseTo(v, 5);
    });
  });

  it("whole-model gradients match finite differences (tiny model, padding, two blocks)", () => {
    const m = createLru({ numItems: NUM_ITEMS, hiddenDim: D, numBlocks: 2, dropout: 0, seed: 7 });
    randomiseWeights(m, 8);
    const batch = tinyBatch();
    const plan = planRows(batch.tokens, batch.labels, B, L);
    const params = m.parameters();
    const r = gradCheck(
      () => linearCrossEntropy(m.hidden(plan), m.embedding.token.weight, m.model.bias, plan.labels, 0),
      params,
      { eps: 2e-3, atol: 5e-4, rtol: 2e-2 },
    );
    expect(r.mismatches).toEqual([]);
    expect(r.checked).toBe(params.reduce((a, p) => a + p.size, 0));
  });

  it("LRU layer gradients (input, params_log, projections) match finite differences", () => {
    const m = createLru({ numItems: NUM_ITEMS, hiddenDim: D, numBlocks: 1, dropout: 0, seed: 9 });
    randomiseWeights(m, 10);
    const layer = m.model.blocks.items[0]!.lruLayer;
    const plan = planRows(tinyBatch().tokens, tinyBatch().labels, B, L);
    const rng = new Rng(11);
    const x = Tensor.from(
      Array.from({ length: plan.ids.length * D }, () => rng.uniformIn(-1, 1)),
      [plan.ids.length, D],
    );
    const r = gradCheck(([xx]) => layer.forward(xx!, plan.layout), [x, ...layer.parameters()], {
      eps: 2e-3,
      atol: 5e-4,
      rtol: 2e-2,
    });
    expect(r.mismatches).toEqual([]);
  });

  it("lossAndBackward matches the gradient of the loss computed separately, and accumulates", () => {
    const m = createLru({ numItems: NUM_ITEMS, hiddenDim: D, dropout: 0, seed: 12 });
    randomiseWeights(m, 13);
    const batch = tinyBatch();
    m.lossAndBackward(batch);
    const once = m.embedding.token.weight.grad!.slice();
    expect(once.some((v) => v !== 0)).toBe(true);
    m.lossAndBackward(batch);
    m.embedding.token.weight.grad!.forEach((v, i) => {
      expect(v).toBeCloseTo(2 * once[i]!, 6);
    });
  });

  it("lossAndBackward (recycled step memory) gives the same gradients as a plain backward", () => {
    const a = createLru({ numItems: NUM_ITEMS, hiddenDim: D, dropout: 0, seed: 14 });
    const b = createLru({ numItems: NUM_ITEMS, hiddenDim: D, dropout: 0, seed: 14 });
    const batch = tinyBatch();
    for (let step = 0; step < 3; step++) a.lossAndBackward(batch); // reuse the arena's buffers
    const plan = planRows(batch.tokens, batch.labels, B, L);
    for (let step = 0; step < 3; step++) {
      backward(linearCrossEntropy(b.hidden(plan), b.embedding.token.weight, b.model.bias, plan.labels, 0));
    }
    const pb = b.parameters();
    a.parameters().forEach((p, i) => {
      expect(isArenaBuffer(p.grad!)).toBe(false);
      expect([...p.grad!]).toEqual([...pb[i]!.grad!]);
    });
  });

  it("is deterministic by seed, including dropout in training", () => {
    const run = (seed: number) => {
      const m = createLru({ numItems: NUM_ITEMS, hiddenDim: D, dropout: 0.3, seed });
      m.setTraining(true);
      const losses = [m.lossAndBackward(tinyBatch()), m.lossAndBackward(tinyBatch())];
      return { losses, w: m.parameters()[5]!.data.slice() };
    };
    const a = run(21);
    const b = run(21);
    const c = run(22);
    expect(b.losses).toEqual(a.losses);
    expect([...b.w]).toEqual([...a.w]);
    expect(a.losses[0]).not.toBe(a.losses[1]); // dropout masks differ between steps
    expect([...c.w]).not.toEqual([...a.w]);
  });

  it("resumes dropout streams exactly from randomState()", () => {
    const a = createLru({ numItems: NUM_ITEMS, hiddenDim: D, dropout: 0.3, seed: 5 });
    const b = createLru({ numItems: NUM_ITEMS, hiddenDim: D, dropout: 0.3, seed: 6 });
    a.setTraining(true);
    b.setTraining(true);
    a.lossAndBackward(tinyBatch());
    b.loadStateDict(a.stateDict());
    b.setRandomState(a.getRandomState());
    expect(b.getRandomState()).toHaveLength(4 * (1 + 2 * 2));
    expect(b.lossAndBackward(tinyBatch())).toBe(a.lossAndBackward(tinyBatch()));
  });

  it("scoreNext restores training mode and does not touch gradients", () => {
    const m = createLru({ numItems: NUM_ITEMS, hiddenDim: D, dropout: 0.5, seed: 1 });
    m.setTraining(true);
    const s1 = m.scoreNext(tinyBatch().tokens, B, L);
    const s2 = m.scoreNext(tinyBatch().tokens, B, L);
    expect([...s2]).toEqual([...s1]);
    expect(m.training).toBe(true);
    expect(m.parameters().every((p) => p.grad === null)).toBe(true);
    expect(sumAll(new Tensor(s1, [s1.length])).item()).not.toBe(0);
  });

  it("rejects malformed batches", () => {
    const m = createLru({ numItems: NUM_ITEMS, hiddenDim: D, seed: 1 });
    expect(() => m.scoreNext(Int32Array.of(1, 2), 1, 3)).toThrow(/2 tokens for a 1×3 batch/);
    expect(() => m.scoreNext(Int32Array.of(9), 1, 1)).toThrow(/outside/);
    expect(() =>
      m.lossAndBackward({ batchSize: 1, seqLen: 1, tokens: Int32Array.of(1), labels: Int32Array.of(8) }),
    ).toThrow(/label 8/);
    expect(() => createLru({ numItems: 0 })).toThrow(/numItems/);
  });
});
