import { describe, expect, it } from "vitest";
import { CatalogueScorer } from "../../src/retrievers/catalogue-scorer.js";
import { Rng } from "../../src/tensor/rng.js";

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
      const scorer = new CatalogueScorer(table, bias, rows, dim);
      expect(scorer.backend).toBe("wasm-simd");
      for (let trial = 0; trial < 3; trial++) {
        const h = Float32Array.from({ length: dim }, () => rng.normal());
        const got = scorer.score(h);
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
