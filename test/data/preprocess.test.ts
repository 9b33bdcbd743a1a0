import { describe, expect, it } from "vitest";
import { preprocess } from "../../src/data/preprocess.js";
import type { RawInteraction } from "../../src/data/raw.js";
import { formatDensity, formatStatsTable } from "../../src/data/stats.js";
import { InputError } from "../../src/util/errors.js";

function titled(items: string[]): Map<string, string> {
  return new Map(items.map((i) => [i, `Title ${i}`]));
}

/** user u rates each of items at timestamps 1, 2, ... */
function seqs(spec: Record<string, string[]>): RawInteraction[] {
  const out: RawInteraction[] = [];
  for (const [user, items] of Object.entries(spec)) {
    items.forEach((item, k) => {
      out.push({ user, item, timestamp: k + 1 });
    });
  }
  return out;
}

describe("preprocess", () => {
  it("splits leave-one-out in (timestamp, dense item id) order", () => {
    const interactions: RawInteraction[] = [
      { user: "1", item: "c", timestamp: 3 },
      { user: "1", item: "b", timestamp: 2 },
      { user: "1", item: "a", timestamp: 2 }, // tie with b: a has the smaller dense id
      { user: "1", item: "d", timestamp: 1 },
      { user: "1", item: "e", timestamp: 9 },
    ];
    const { dataset, stats } = preprocess(
      { interactions, titles: titled(["a", "b", "c", "d", "e"]) },
      { minUserCount: 2, minItemCount: 1 },
    );
    expect(dataset.itemIds).toEqual(["", "a", "b", "c", "d", "e"]);
    expect(dataset.train[1]).toEqual([4, 1, 2]); // d, a, b
    expect(dataset.val[1]).toBe(3); // c
    expect(dataset.test[1]).toBe(5); // e
    expect(dataset.train[0]).toEqual([]);
    expect(dataset.val[0]).toBe(0);
    expect(dataset.titles[0]).toBe("");
    expect(dataset.titles[1]).toBe("Title a");
    expect(stats).toEqual({ users: 1, items: 5, interactions: 5, avgLength: 5, density: 1 });
  });

  it("orders dense ids numerically when all raw ids are integers, else by code units", () => {
    const interactions = seqs({ "10": ["2", "10", "9"], "9": ["2", "10", "9"] });
    const { dataset } = preprocess(
      { interactions, titles: titled(["2", "9", "10"]) },
      { minUserCount: 2, minItemCount: 1 },
    );
    expect(dataset.userIds).toEqual(["", "9", "10"]);
    expect(dataset.itemIds).toEqual(["", "2", "9", "10"]);
    const mixed = seqs({ b: ["x10", "x9"], a: ["x9", "x10"] });
    const r = preprocess(
      { interactions: mixed, titles: titled(["x9", "x10"]) },
      { minUserCount: 2, minItemCount: 1 },
    );
    expect(r.dataset.userIds).toEqual(["", "a", "b"]);
    expect(r.dataset.itemIds).toEqual(["", "x10", "x9"]);
  });

  it("iterates the k-core filter until stable", () => {
    // 3-core. Item "z" has 2 interactions -> removed; that drops user "u4" to 2 -> removed;
    // which drops item "w" to 2 -> removed; which drops user "u5" to 2 -> removed.
    const interactions = seqs({
      u1: ["a", "b", "c"],
      u2: ["a", "b", "c"],
      u3: ["a", "b", "c", "w"],
      u4: ["z", "w", "a"],
      u5: ["w", "z", "b"],
    });
    const r = preprocess(
      { interactions, titles: titled(["a", "b", "c", "w", "z"]) },
      { minUserCount: 3, minItemCount: 3 },
    );
    expect(r.dataset.userIds).toEqual(["", "u1", "u2", "u3"]);
    expect(r.dataset.itemIds).toEqual(["", "a", "b", "c"]);
    expect(r.stats.interactions).toBe(9);
    expect(r.report.kCoreIterations).toBeGreaterThanOrEqual(3);
    expect(r.dataset.train.slice(1)).toEqual([[1], [1], [1]]);
  });

  it("drops items without a non-empty title before the k-core", () => {
    const interactions = seqs({ u1: ["a", "b", "c", "d"], u2: ["a", "b", "d", "c"] });
    const titles = new Map([
      ["a", "A"],
      ["b", "  "],
      ["d", "D"],
    ]);
    const r = preprocess({ interactions, titles }, { minUserCount: 2, minItemCount: 1 });
    expect(r.dataset.itemIds).toEqual(["", "a", "d"]);
    expect(r.dataset.titles).toEqual(["", "A", "D"]);
    expect(r.report.itemsWithoutTitle).toBe(2);
    expect(r.report.stages.map((s) => [s.stage, s.interactions])).toEqual([
      ["read", 8],
      ["title", 4],
      ["k-core", 4],
    ]);
  });

  it("applies a minimum rating", () => {
    const interactions: RawInteraction[] = [
      { user: "1", item: "a", timestamp: 1, rating: 5 },
      { user: "1", item: "b", timestamp: 2, rating: 2 },
      { user: "1", item: "c", timestamp: 3, rating: 4 },
    ];
    const r = preprocess(
      { interactions, titles: titled(["a", "b", "c"]) },
      { minRating: 4, minUserCount: 2, minItemCount: 1 },
    );
    expect(r.dataset.itemIds).toEqual(["", "a", "c"]);
    expect(r.report.minRating).toBe(4);
  });

  it("says which filter removed everything", () => {
    const interactions = seqs({ "1": ["a", "b"], "2": ["a"], "3": ["c", "a", "b"] });
    const titles = titled(["a", "b", "c"]);
    expect(() => preprocess({ interactions, titles })).toThrow(
      /after 5-core filtering .* no users remain \(before: 3 users, 3 items, 6 interactions\)/,
    );
    expect(() => preprocess({ interactions, titles: new Map() })).toThrow(
      /after dropping items without a title/,
    );
    expect(() => preprocess({ interactions, titles }, { minRating: 3 })).toThrow(/minimum-rating filter/);
    expect(() => preprocess({ interactions: [], titles })).toThrow(InputError);
    expect(() => preprocess({ interactions, titles }, { minUserCount: 1 })).toThrow(/minUserCount/);
  });
});

describe("stats table", () => {
  it("formats like the paper's Table 2", () => {
    const t = formatStatsTable([
      {
        name: "ml-latest-small",
        stats: { users: 610, items: 3650, interactions: 90274, avgLength: 147.99, density: 0.04054 },
      },
    ]);
    expect(t.split("\n")).toEqual([
      "| Dataset         | Users | Items | Interact. | Length | Density |",
      "|-----------------|------:|------:|----------:|-------:|--------:|",
      "| ml-latest-small |   610 | 3,650 |    90,274 | 147.99 | 4.05e-2 |",
    ]);
    expect(formatDensity(0.0009996)).toBe("1.00e-3");
    expect(formatDensity(8.87e-4)).toBe("8.87e-4");
  });
});
