import { describe, expect, it } from "vitest";
import {
  encodeEvaluationRow,
  encodeTrainingBatch,
  epochOrder,
  evaluationHistory,
  evaluationUsers,
  TrainingBatches,
  trainingSequences,
} from "../../src/retrievers/batches.js";
import { datasetFromSequences } from "./fixtures.js";

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("trainingSequences (official LRUTrainDataset windows)", () => {
  it("keeps a history shorter than maxLen + step whole", () => {
    expect(trainingSequences([[], range(1, 7)], 4)).toEqual([range(1, 7)]);
  });

  it("cuts a long history into maxLen windows from the end, dropping the remainder at the start", () => {
    expect(trainingSequences([[], range(1, 8)], 4)).toEqual([range(5, 8), range(1, 4)]);
    expect(trainingSequences([[], range(1, 10)], 4)).toEqual([range(7, 10), range(3, 6)]);
  });

  it("steps by int(slidingWindow × maxLen)", () => {
    expect(trainingSequences([[], range(1, 6)], 4, 0.5)).toEqual([range(3, 6), range(1, 4)]);
    expect(() => trainingSequences([[], [1]], 4, 0.1)).toThrow(/slidingWindow/);
  });

  it("goes through users in id order and skips empty histories", () => {
    expect(trainingSequences([[], [3, 4], [], [5]], 4)).toEqual([[3, 4], [5]]);
  });
});

describe("training rows", () => {
  it("tokens = s[:-1], labels = s, both left-padded (the padding slot before s[1] is labelled s[0])", () => {
    const b = encodeTrainingBatch([[1, 2, 3]], 5);
    expect([...b.tokens]).toEqual([0, 0, 0, 1, 2]);
    expect([...b.labels]).toEqual([0, 0, 1, 2, 3]);
  });

  it("a full window has one padding token, labelled with its first item", () => {
    const b = encodeTrainingBatch([[5, 6, 7, 8]], 4);
    expect([...b.tokens]).toEqual([0, 5, 6, 7]);
    expect([...b.labels]).toEqual([5, 6, 7, 8]);
  });

  it("a sequence longer than maxLen keeps the last maxLen labels and tokens", () => {
    const b = encodeTrainingBatch([range(1, 6)], 5);
    expect([...b.tokens]).toEqual([1, 2, 3, 4, 5]);
    expect([...b.labels]).toEqual([2, 3, 4, 5, 6]);
  });

  it("lays rows out one after the other", () => {
    const b = encodeTrainingBatch([[1, 2], [3]], 3);
    expect(b.batchSize).toBe(2);
    expect(b.seqLen).toBe(3);
    expect([...b.tokens]).toEqual([0, 0, 1, 0, 0, 0]);
    expect([...b.labels]).toEqual([0, 1, 2, 0, 0, 3]);
  });
});

describe("epoch shuffling", () => {
  it("is a permutation that depends only on (seed, epoch)", () => {
    const a = epochOrder(50, 42, 0);
    expect([...a].sort((x, y) => x - y)).toEqual(range(0, 49));
    expect([...epochOrder(50, 42, 0)]).toEqual([...a]);
    expect([...epochOrder(50, 42, 1)]).not.toEqual([...a]);
    expect([...epochOrder(50, 43, 0)]).not.toEqual([...a]);
  });

  it("serves every sequence once per epoch, the last batch short", () => {
    const train = [[], ...range(1, 10).map((u) => [u, u + 100])];
    const batches = new TrainingBatches(train, { batchSize: 4, maxLen: 3, slidingWindow: 1, seed: 7 });
    expect(batches.batchesPerEpoch).toBe(3);
    const seen: number[] = [];
    const sizes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const b = batches.batch(0, i);
      sizes.push(b.batchSize);
      for (let r = 0; r < b.batchSize; r++) seen.push(b.labels[r * 3 + 1]!);
    }
    expect(sizes).toEqual([4, 4, 2]);
    expect(seen.sort((x, y) => x - y)).toEqual(range(1, 10));
    const first = (e: number) => batches.batch(e, 0).labels.join(",");
    expect(first(0)).not.toEqual(first(1));
  });
});

describe("evaluation inputs (official LRUValidDataset / LRUTestDataset)", () => {
  const ds = datasetFromSequences("t", 9, [
    [1, 2, 3, 4, 5],
    [6, 7, 8],
  ]);

  it("val: train → val; test: train + val → test", () => {
    expect(evaluationHistory(ds, "val", 1)).toEqual([1, 2, 3]);
    expect(evaluationHistory(ds, "test", 1)).toEqual([1, 2, 3, 4]);
    expect(evaluationUsers(ds, "test")).toEqual([1, 2]);
  });

  it("keeps the last maxLen items, left-padded", () => {
    const tokens = new Int32Array(6).fill(-1);
    encodeEvaluationRow([1, 2, 3, 4], 3, tokens, 0);
    encodeEvaluationRow([7], 3, tokens, 1);
    expect([...tokens]).toEqual([2, 3, 4, 0, 0, 7]);
  });

  it("skips users without a held-out item", () => {
    const d = { ...ds, val: [0, 4, 0], test: [0, 5, 0] };
    expect(evaluationUsers(d, "val")).toEqual([1]);
  });
});
