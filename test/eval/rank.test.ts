import { describe, expect, it } from "vitest";
import { metricsFromRanks } from "../../src/eval/metrics.js";
import { NaNScoreError, rankOfLabel } from "../../src/eval/rank.js";

const f = (xs: number[]) => Float32Array.from(xs);

describe("rankOfLabel", () => {
  it("counts strictly higher items and ignores padding", () => {
    // index 0 is padding with the highest score; it must not count.
    const scores = f([99, 0.1, 0.9, 0.5, 0.7]);
    expect(rankOfLabel(scores, 2)).toBe(1);
    expect(rankOfLabel(scores, 4)).toBe(2);
    expect(rankOfLabel(scores, 3)).toBe(3);
    expect(rankOfLabel(scores, 1)).toBe(4);
  });

  it("drops excluded items above the label, once each, and never the label itself", () => {
    const scores = f([0, 0.1, 0.9, 0.5, 0.7]);
    expect(rankOfLabel(scores, 3, [2])).toBe(2);
    expect(rankOfLabel(scores, 3, [2, 2, 4, 4])).toBe(1);
    expect(rankOfLabel(scores, 3, new Set([2, 4]))).toBe(1);
    // excluding lower items changes nothing; excluding the label or padding is ignored
    expect(rankOfLabel(scores, 3, [1, 3, 0])).toBe(3);
  });

  it("breaks ties pessimistically or at the expected position", () => {
    // label 1 ties with items 2 and 3; item 4 is higher.
    const scores = f([0, 0.5, 0.5, 0.5, 0.8, 0.1]);
    expect(rankOfLabel(scores, 1, [], "pessimistic")).toBe(4);
    expect(rankOfLabel(scores, 1, [], "expected")).toBe(3);
    // an excluded tied item no longer counts
    expect(rankOfLabel(scores, 1, [2], "pessimistic")).toBe(3);
    expect(rankOfLabel(scores, 1, [2], "expected")).toBe(2.5);
  });

  it("gives a constant-score model near-zero metrics", () => {
    const numItems = 1000;
    const scores = new Float32Array(numItems + 1).fill(3.14);
    const ranks = [];
    for (let label = 1; label <= 100; label++) ranks.push(rankOfLabel(scores, label, [label + 1, label + 2]));
    expect(ranks.every((r) => r === numItems - 2)).toBe(true);
    const m = metricsFromRanks(ranks);
    expect(m["Recall@50"]).toBe(0);
    expect(m["NDCG@50"]).toBe(0);
    const expected = metricsFromRanks(ranks.map((_, i) => rankOfLabel(scores, i + 1, [], "expected")));
    expect(expected["Recall@50"]).toBe(0);
  });

  it("treats ±Infinity as ordinary scores and throws on NaN", () => {
    expect(rankOfLabel(f([0, -Infinity, 1, Infinity]), 2)).toBe(2);
    expect(() => rankOfLabel(f([0, 1, Number.NaN, 2]), 1)).toThrow(NaNScoreError);
    expect(() => rankOfLabel(f([0, Number.NaN, 1]), 1)).toThrow(/item 1 is NaN/);
  });

  it("rejects labels outside 1..numItems", () => {
    expect(() => rankOfLabel(f([0, 1]), 0)).toThrow(RangeError);
    expect(() => rankOfLabel(f([0, 1]), 2)).toThrow(/outside items 1..1/);
  });
});

describe("rankOfLabel against a sort-based oracle (official argsort with history masked to -1e9)", () => {
  it("agrees on random untied scores", () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let trial = 0; trial < 50; trial++) {
      const n = 40;
      const scores = new Float32Array(n + 1);
      for (let i = 1; i <= n; i++) scores[i] = rand();
      const label = 1 + Math.floor(rand() * n);
      const history = [1, 2, 3, 4, 5].map(() => 1 + Math.floor(rand() * n)).filter((i) => i !== label);
      const masked = Float32Array.from(scores);
      masked[0] = -1e9;
      for (const h of history) masked[h] = -1e9;
      const order = Array.from({ length: n + 1 }, (_, i) => i).sort((a, b) => masked[b]! - masked[a]!);
      expect(rankOfLabel(scores, label, history)).toBe(order.indexOf(label) + 1);
    }
  });
});
