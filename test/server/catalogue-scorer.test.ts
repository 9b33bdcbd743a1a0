import { afterAll, describe, expect, it } from "vitest";
import { CatalogueScorer } from "../../src/retrievers/catalogue-scorer.js";
import { topItems } from "../../src/retrievers/evaluate.js";
import { Rng } from "../../src/tensor/rng.js";

const scorers: CatalogueScorer[] = [];
afterAll(() => {
  for (const s of scorers) s.dispose();
});
function scorer(...args: ConstructorParameters<typeof CatalogueScorer>): CatalogueScorer {
  const s = new CatalogueScorer(...args);
  scorers.push(s);
  return s;
}

describe("catalogue scorer", () => {
  for (const [rows, dim] of [
    [1, 4],
    [7, 6],
    [1001, 64],
    [30, 17],
  ] as const) {
    it(`equals a float64 reference for ${rows} rows of width ${dim}`, () => {
      const rng = new Rng(rows * 31 + dim);
      const table = Float32Array.from({ length: rows * dim }, () => rng.normal());
      const bias = Float32Array.from({ length: rows }, () => rng.normal());
      const s0 = scorer(table, bias, rows, dim);
      expect(s0.backend).toBe("wasm-simd");
      for (let trial = 0; trial < 3; trial++) {
        const h = Float32Array.from({ length: dim }, () => rng.normal());
        const got = s0.score(h);
        for (let i = 0; i < rows; i++) {
          let ref = bias[i]!;
          for (let k = 0; k < dim; k++) ref += table[i * dim + k]! * h[k]!;
          expect(Math.abs(got[i]! - ref)).toBeLessThan(1e-5 * (1 + Math.abs(ref)));
        }
      }
    });
  }

  it("rejects mismatched shapes", () => {
    expect(() => new CatalogueScorer(new Float32Array(5), null, 2, 3)).toThrow(/table of 5 for 2×3/);
    expect(() => new CatalogueScorer(new Float32Array(6), null, 2, 3).score(new Float32Array(2))).toThrow(
      /vector of 2/,
    );
  });
});

describe("catalogue scorer on two threads", () => {
  it("scores every row exactly as one thread does (bit for bit), 200,003 rows", () => {
    const rng = new Rng(5);
    const rows = 200_003;
    const dim = 24;
    const table = Float32Array.from({ length: rows * dim }, () => rng.normal());
    const bias = Float32Array.from({ length: rows }, () => rng.normal());
    const one = scorer(table, bias, rows, dim, { threads: 1, quantized: false });
    const two = scorer(table, bias, rows, dim, { threads: 2, quantized: false });
    expect(two.threads).toBe(2);
    for (let trial = 0; trial < 3; trial++) {
      const h = Float32Array.from({ length: dim }, () => rng.normal());
      const a = one.score(h).slice();
      const b = two.score(h);
      expect(Buffer.from(b.buffer, b.byteOffset, b.byteLength).equals(Buffer.from(a.buffer))).toBe(true);
    }
  });
});

describe("catalogue top-k from int8 bounds + exact rescoring", () => {
  /** top() must be exactly topItems over the exact scores: same items, same order, same float32 scores. */
  function expectSameTop(s: CatalogueScorer, h: Float32Array, k: number, excluded: ReadonlySet<number>) {
    const got = s.top(h, k, excluded);
    const want = topItems(s.score(h).slice(), k, excluded);
    expect(got.items).toEqual(want.items);
    expect(got.scores).toEqual(want.scores);
    return got;
  }

  it("equals exact scoring + topItems on a random catalogue, with exclusions; the shortlist is short", () => {
    const rng = new Rng(11);
    const rows = 100_001;
    const dim = 64;
    const table = Float32Array.from({ length: rows * dim }, () => rng.normal() * 0.05);
    const bias = Float32Array.from({ length: rows }, () => rng.normal() * 0.1);
    for (const threads of [1, 2]) {
      const s = scorer(table, bias, rows, dim, { threads });
      expect(s.quantized).toBe(true);
      for (let trial = 0; trial < 4; trial++) {
        const h = Float32Array.from({ length: dim }, () => rng.normal() * 3);
        const best = topItems(s.score(h).slice(), 30, new Set()).items;
        // Exclude some of the best rows and some random ones.
        const excluded = new Set([...best.filter((_, i) => i % 3 === 0), 1, 2, 3, 77, 5000]);
        for (const k of [1, 10, 20]) {
          const got = expectSameTop(s, h, k, excluded);
          expect(got.items.length).toBe(k);
          expect(s.lastTop.path).toBe("bounds");
          expect(s.lastTop.shortlist).toBeLessThan(rows / 100);
        }
      }
    }
  });

  it("adversarial near-ties: rows the int8 copy cannot tell apart, exact duplicates, 1-ulp differences", () => {
    const rng = new Rng(23);
    const dim = 16;
    const rows = 6001;
    const base = Float32Array.from({ length: dim }, () => rng.normal());
    const table = new Float32Array(rows * dim);
    const bias = new Float32Array(rows);
    for (let i = 0; i < rows; i++) {
      for (let k = 0; k < dim; k++) {
        let v = base[k]!;
        // Groups: exact copies of the base row (ties broken by index), 1-ulp nudges, tiny noise far below
        // the int8 step, and ordinary rows far below.
        if (i % 4 === 1 && k === i % dim) v = nudge(v, (i % 8) - 4);
        else if (i % 4 === 2) v += rng.normal() * 1e-6;
        else if (i % 4 === 3) v = rng.normal() * 0.1 - 1;
        table[i * dim + k] = v;
      }
      bias[i] = i % 4 === 2 ? rng.normal() * 1e-7 : 0;
    }
    const s = scorer(table, bias, rows, dim, { threads: 2, quantized: true });
    for (let trial = 0; trial < 5; trial++) {
      const h = Float32Array.from({ length: dim }, (_, k) => base[k]! + rng.normal() * 0.01);
      for (const k of [1, 5, 20]) {
        expectSameTop(s, h, k, new Set([4, 8, 12]));
        expect(s.lastTop.path).toBe("bounds");
      }
    }
    // Every row alike: the shortlist is everything, the answer is still the lowest indices.
    const flat = scorer(new Float32Array(1000 * dim).fill(0.25), null, 1000, dim, { quantized: true });
    const h = Float32Array.from({ length: dim }, () => rng.normal());
    const got = expectSameTop(flat, h, 5, new Set([2]));
    expect(got.items).toEqual([1, 3, 4, 5, 6]);
  });

  it("the int8 order is wrong by almost the whole error bound: the exact winner is still found", () => {
    // h = (0, 1, …, 1). Row element 0 (read with weight 0) fixes each row's int8 step s = max|E|/127.
    // Winners: s = 1, other elements 50.499 → int8 50 (error +0.499 each): approximate 50, exact 50.499.
    // Decoys: s = 1.01, other elements 1.01 · 49.501 → int8 50 (error −0.499 s each): approximate 50.5,
    // exact ≈ 49.996. Every decoy looks better than every winner by about half the worst-case error bound.
    const dim = 32;
    const rows = 2001;
    const table = new Float32Array(rows * dim);
    for (let i = 1; i < rows; i++) {
      const winner = i % 50 === 7;
      const jitter = (i % 13) * 1e-4;
      table[i * dim] = winner ? 127 : 127 * 1.01;
      for (let k = 1; k < dim; k++) table[i * dim + k] = winner ? 50.499 - jitter : 1.01 * (49.501 + jitter);
    }
    const s = scorer(table, null, rows, dim, { threads: 1, quantized: true });
    const h = Float32Array.from({ length: dim }, (_, k) => (k === 0 ? 0 : 1));
    for (const k of [1, 3, 10]) {
      const got = expectSameTop(s, h, k, new Set());
      expect(got.items.every((i) => i % 50 === 7)).toBe(true);
    }
  });

  it("fewer allowed rows than k, k larger than the catalogue, and an all-zero user vector", () => {
    const rng = new Rng(3);
    const rows = 40;
    const dim = 8;
    const table = Float32Array.from({ length: rows * dim }, () => rng.normal());
    const bias = Float32Array.from({ length: rows }, () => rng.normal());
    const s = scorer(table, bias, rows, dim, { quantized: true });
    const h = Float32Array.from({ length: dim }, () => rng.normal());
    const excluded = new Set(Array.from({ length: 35 }, (_, i) => i + 1));
    expect(expectSameTop(s, h, 10, excluded).items.length).toBe(4);
    expect(expectSameTop(s, h, 100, new Set()).items.length).toBe(39);
    expectSameTop(s, new Float32Array(dim), 7, new Set());
  });
});

/** v moved by `steps` float32 ulps. */
function nudge(v: number, steps: number): number {
  const f = new Float32Array([v]);
  const u = new Int32Array(f.buffer);
  u[0]! += v >= 0 ? steps : -steps;
  return f[0]!;
}
