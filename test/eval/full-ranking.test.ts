import { describe, expect, it } from "vitest";
import type { Dataset } from "../../src/data/dataset.js";
import { excludedItems, rankUsers } from "../../src/eval/full-ranking.js";

// 3 users, 6 items. User 3 has no held-out items (too short) and is skipped.
const dataset: Dataset = {
  name: "tiny",
  numUsers: 3,
  numItems: 6,
  train: [[], [1, 2, 3], [4, 5], []],
  val: [0, 4, 6, 0],
  test: [0, 5, 1, 0],
  titles: ["", "a", "b", "c", "d", "e", "f"],
  userIds: ["", "u1", "u2", "u3"],
  itemIds: ["", "1", "2", "3", "4", "5", "6"],
};

// Scores = item id: item 6 best, item 1 worst.
const byItemId = (users: readonly number[]) => {
  const out = new Float32Array(users.length * 7);
  users.forEach((_, b) => {
    for (let i = 1; i <= 6; i++) out[b * 7 + i] = i;
  });
  return out;
};

describe("rankUsers (full ranking)", () => {
  it("excludes history: train for val, train + val for test", () => {
    expect(excludedItems(dataset, 1, "val")).toEqual([1, 2, 3]);
    expect(excludedItems(dataset, 1, "test")).toEqual([1, 2, 3, 4]);
    expect(excludedItems(dataset, 1, "test", "input", 2)).toEqual([3, 4]);
    expect(() => excludedItems(dataset, 1, "test", "input")).toThrow(/windowLen/);
    expect(excludedItems(dataset, 1, "test", "none")).toEqual([]);
  });

  it("ranks every user that has a label", async () => {
    const val = await rankUsers(dataset, "val", byItemId, { progressLabel: null, batchSize: 1 });
    // user 1 label 4: items 5,6 above; user 2 label 6: top.
    expect(val).toEqual([
      { user: 1, label: 4, rank: 3 },
      { user: 2, label: 6, rank: 1 },
    ]);
    const test = await rankUsers(dataset, "test", byItemId, { progressLabel: null });
    // user 1 label 5: only 6 above; user 2 label 1: items 2,3 above (4,5,6 excluded).
    expect(test).toEqual([
      { user: 1, label: 5, rank: 2 },
      { user: 2, label: 1, rank: 3 },
    ]);
    const window = await rankUsers(dataset, "test", byItemId, {
      progressLabel: null,
      exclude: "input",
      windowLen: 1,
    });
    // user 2's window is [6] only: items 2,3,4,5 above label 1.
    expect(window[1]).toEqual({ user: 2, label: 1, rank: 5 });
  });

  it("records tie counts in expected mode", async () => {
    const constant = (users: readonly number[]) => new Float32Array(users.length * 7).fill(1);
    const expected = await rankUsers(dataset, "val", constant, { progressLabel: null, tie: "expected" });
    // user 1: 3 history items excluded, label + 2 others tied -> positions 1..3, mean 2
    expect(expected[0]).toEqual({ user: 1, label: 4, rank: 2, ties: 2 });
    const pessimistic = await rankUsers(dataset, "val", constant, { progressLabel: null });
    expect(pessimistic[0]).toEqual({ user: 1, label: 4, rank: 3 });
  });

  it("checks the scorer's output size", async () => {
    await expect(
      rankUsers(dataset, "val", () => new Float32Array(3), { progressLabel: null }),
    ).rejects.toThrow(/expected 2 × 7/);
  });
});
