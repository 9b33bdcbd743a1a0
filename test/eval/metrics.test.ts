import { describe, expect, it } from "vitest";
import { metricsFromRanks, userMetric } from "../../src/eval/metrics.js";

describe("metrics from ranks", () => {
  it("matches hand-computed values per user", () => {
    expect(userMetric("NDCG", 1, 1)).toBe(1);
    expect(userMetric("NDCG", 3, 5)).toBeCloseTo(0.5, 12); // 1/log2(4)
    expect(userMetric("NDCG", 7, 10)).toBeCloseTo(1 / 3, 12); // 1/log2(8)
    expect(userMetric("MRR", 4, 5)).toBe(0.25);
    expect(userMetric("Recall", 5, 5)).toBe(1);
  });

  it("cuts at k inclusively", () => {
    expect(userMetric("Recall", 10, 10)).toBe(1);
    expect(userMetric("Recall", 11, 10)).toBe(0);
    expect(userMetric("NDCG", 10.5, 10)).toBe(0);
    expect(userMetric("MRR", 20, 20)).toBe(0.05);
  });

  it("averages per user over the configured ks", () => {
    const m = metricsFromRanks([1, 3, 12], [10, 1]);
    expect(Object.keys(m)).toEqual(["Recall@1", "MRR@1", "NDCG@1", "Recall@10", "MRR@10", "NDCG@10"]);
    expect(m["Recall@1"]).toBeCloseTo(1 / 3, 12);
    expect(m["Recall@10"]).toBeCloseTo(2 / 3, 12);
    expect(m["MRR@10"]).toBeCloseTo((1 + 1 / 3) / 3, 12);
    expect(m["NDCG@10"]).toBeCloseTo((1 + 0.5) / 3, 12);
  });

  it("defines fractional (expected-tie) ranks with the same formulas", () => {
    expect(userMetric("MRR", 2.5, 5)).toBe(0.4);
    expect(userMetric("NDCG", 1.5, 5)).toBeCloseTo(1 / Math.log2(2.5), 12);
  });

  it("averages exactly over tied positions when ties are recorded (McSherry & Najork)", () => {
    // 1 item above, 2 tied with the label: positions 2, 3, 4 equally likely; midpoint rank 3.
    const r = { rank: 3, ties: 2 };
    expect(userMetric("Recall", r.rank, 3, r.ties)).toBeCloseTo(2 / 3, 12);
    expect(userMetric("Recall", r.rank, 1, r.ties)).toBe(0);
    expect(userMetric("MRR", r.rank, 10, r.ties)).toBeCloseTo((1 / 2 + 1 / 3 + 1 / 4) / 3, 12);
    expect(userMetric("NDCG", r.rank, 10, r.ties)).toBeCloseTo(
      (1 / Math.log2(3) + 0.5 + 1 / Math.log2(5)) / 3,
      12,
    );
    expect(metricsFromRanks([r, 1], [3])["Recall@3"]).toBeCloseTo((2 / 3 + 1) / 2, 12);
    // A constant-score model over 1000 items is exactly a random ranking: Recall@50 = 50/1000.
    expect(userMetric("Recall", 500.5, 50, 999)).toBeCloseTo(0.05, 12);
    expect(() => userMetric("Recall", 1, 5, 4)).toThrow(/before position 1/);
  });

  it("returns NaN for no users and rejects bad input", () => {
    expect(metricsFromRanks([], [5])["Recall@5"]).toBeNaN();
    expect(() => metricsFromRanks([1], [0])).toThrow(/positive integer/);
    expect(() => metricsFromRanks([0.5], [5])).toThrow(/rank must be >= 1/);
  });
});
