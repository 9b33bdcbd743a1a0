import { describe, expect, it } from "vitest";
import { metricsFromRanks } from "../../src/eval/metrics.js";
import { combineRanks, metricsForUsers, retrievalSubset, twoStageReport } from "../../src/eval/two-stage.js";
import type { UserRank } from "../../src/eval/user-ranks.js";

const retrieval: UserRank[] = [
  { user: 1, label: 10, rank: 3 },
  { user: 2, label: 11, rank: 25 },
  { user: 3, label: 12, rank: 20 },
  { user: 4, label: 13, rank: 1 },
];
const ranker: UserRank[] = [
  { user: 1, label: 10, rank: 1 },
  { user: 3, label: 12, rank: 2 },
  { user: 4, label: 13, rank: 5 },
];

describe("two-stage metrics", () => {
  it("selects the retrieval subset by rank <= numCandidates", () => {
    expect(retrievalSubset(retrieval).map((r) => r.user)).toEqual([1, 3, 4]);
    expect(retrievalSubset(retrieval, 5).map((r) => r.user)).toEqual([1, 4]);
  });

  it("replaces retriever ranks by ranker ranks for subset users only", () => {
    const { ranks, missingRankerUsers } = combineRanks(retrieval, ranker);
    expect(ranks.map((r) => r.rank)).toEqual([1, 25, 2, 5]);
    expect(missingRankerUsers).toEqual([]);
  });

  it("counts a subset user without a ranker result as a miss and reports it", () => {
    const { ranks, missingRankerUsers } = combineRanks(retrieval, ranker.slice(0, 2));
    expect(ranks.map((r) => r.rank)).toEqual([1, 25, 2, 21]);
    expect(missingRankerUsers).toEqual([4]);
  });

  it("rejects inconsistent ranker results", () => {
    expect(() => combineRanks(retrieval, [{ user: 1, label: 99, rank: 1 }])).toThrow(/label/);
    expect(() => combineRanks(retrieval, [{ user: 1, label: 10, rank: 21 }])).toThrow(/exceeds/);
    expect(() => combineRanks(retrieval, [{ user: 9, label: 10, rank: 1 }])).toThrow(/lack/);
  });

  it("matches the official weighted overall formula for k <= 20", () => {
    const ks = [1, 5, 10];
    const report = twoStageReport(retrieval, ranker, { ks });
    expect(report.users).toBe(4);
    expect(report.subsetUsers).toBe(3);
    const subset = metricsFromRanks([1, 2, 5], ks);
    expect(report.rankerOnSubset).toEqual(subset);
    expect(report.retrieverOnSubset).toEqual(metricsFromRanks([3, 20, 1], ks));
    expect(report.retriever).toEqual(metricsFromRanks([3, 25, 20, 1], ks));
    // official: (subset * retrievalSize + nonRetrieval * rest) / originalSize, nonRetrieval = 0 at k<=20
    const nonRetrieval = metricsFromRanks([25], ks);
    for (const key of Object.keys(subset)) {
      const official = (subset[key]! * 3 + nonRetrieval[key]! * 1) / 4;
      expect(report.overall[key]).toBeCloseTo(official, 12);
    }
  });

  it("filters by a user set or predicate", () => {
    expect(metricsForUsers(retrieval, new Set([4]), [1])["Recall@1"]).toBe(1);
    expect(metricsForUsers(retrieval, (r) => r.user !== 4, [1])["Recall@1"]).toBe(0);
  });
});
