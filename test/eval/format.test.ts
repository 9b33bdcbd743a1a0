import { describe, expect, it } from "vitest";
import { formatMetricsTable } from "../../src/eval/format.js";
import { metricsFromRanks } from "../../src/eval/metrics.js";

describe("formatMetricsTable", () => {
  it("prints one row per metric and one column per k", () => {
    const table = formatMetricsTable(
      [{ name: "lru", users: 2, metrics: metricsFromRanks([1, 3], [5, 1]) }],
      [5, 1],
    );
    expect(table.split("\n")).toEqual([
      "|            | users |     @1 |     @5 |",
      "|------------|------:|-------:|-------:|",
      "| lru Recall |     2 | 0.5000 | 1.0000 |",
      "| lru MRR    |     2 | 0.5000 | 0.6667 |",
      "| lru NDCG   |     2 | 0.5000 | 0.7500 |",
    ]);
    expect(formatMetricsTable([{ name: "x", metrics: {} }], [1])).toContain("| x Recall |       |  – |");
  });
});
