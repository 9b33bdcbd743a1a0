import { describe, expect, it } from "vitest";
import { syntheticDataset } from "../../../src/data/index.js";
import {
  evaluationInstances,
  TrainingExamples,
  toRankingExample,
} from "../../../src/ranker/training/examples.js";
import { datasetFromSequences, fakeCandidates } from "./fixtures.js";

const { dataset } = syntheticDataset({ numUsers: 60, numItems: 80, numClusters: 8, seed: 3 });

describe("TrainingExamples", () => {
  const examples = new TrainingExamples(dataset, 11);

  it("has one example per prefix of length >= 2 of each training sequence", () => {
    let expected = 0;
    for (let u = 1; u <= dataset.numUsers; u++) expected += dataset.train[u]!.length - 1;
    expect(examples.length).toBe(expected);
    // The first example of user 1 predicts train[1][1] from [train[1][0]].
    const first = examples.instance(0);
    expect(first.user).toBe(1);
    expect(first.history).toEqual([dataset.train[1]![0]]);
    expect(first.candidates[first.answerIndex]).toBe(dataset.train[1]![1]);
  });

  it("answer is the next item, history the last 20 before it, negatives outside the whole prefix", () => {
    const seq = Array.from({ length: 40 }, (_, i) => i + 1);
    const ds = datasetFromSequences(100, [[...seq, 41, 42]]);
    const ex = new TrainingExamples(ds, 1);
    expect(ex.length).toBe(39);
    for (let i = 0; i < ex.length; i++) {
      const inst = ex.instance(i, 2);
      const end = i + 2;
      expect(inst.candidates[inst.answerIndex]).toBe(end);
      expect(inst.history).toEqual(seq.slice(0, end - 1).slice(-20));
      expect(inst.candidates).toHaveLength(20);
      expect(new Set(inst.candidates).size).toBe(20);
      for (const [pos, c] of inst.candidates.entries()) {
        if (pos === inst.answerIndex) continue;
        // Negatives avoid every earlier item, even those cut from the shown history.
        expect(c >= end).toBe(true);
        expect(c).not.toBe(end);
        expect(c).toBeLessThanOrEqual(100);
      }
    }
  });

  it("never leaks history into negatives on the synthetic dataset", () => {
    for (let i = 0; i < examples.length; i += 7) {
      const inst = examples.instance(i);
      const train = dataset.train[inst.user]!;
      const answer = inst.candidates[inst.answerIndex]!;
      // Synthetic users never repeat an item, so the prefix is everything before the answer.
      const end = train.indexOf(answer);
      expect(end).toBeGreaterThan(0);
      expect(inst.history).toEqual(train.slice(0, end).slice(-20));
      const negatives = inst.candidates.filter((_, p) => p !== inst.answerIndex);
      const prefixItems = new Set(train.slice(0, end));
      for (const n of negatives) expect(prefixItems.has(n)).toBe(false);
      expect(negatives).not.toContain(answer);
    }
  });

  it("puts the answer at every letter about equally often", () => {
    const counts = new Array<number>(20).fill(0);
    for (let i = 0; i < examples.length; i++) counts[examples.instance(i).answerIndex]!++;
    const expected = examples.length / 20;
    // Chi-square with 19 degrees of freedom; 43.8 is the 0.001 quantile.
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(43.8);
    expect(Math.min(...counts)).toBeGreaterThan(0);
  });

  it("is deterministic per (seed, epoch, index) and differs across epochs", () => {
    const again = new TrainingExamples(dataset, 11);
    expect(again.instance(5, 0)).toEqual(examples.instance(5, 0));
    expect(examples.instance(5, 1).candidates).not.toEqual(examples.instance(5, 0).candidates);
    const order = examples.order(0);
    expect([...order].sort((a, b) => a - b)).toEqual([...Array(examples.length).keys()]);
    expect([...order]).toEqual([...again.order(0)]);
    expect([...order]).not.toEqual([...examples.order(1)]);
  });

  it("refuses when there are too few items for the negatives", () => {
    const ds = datasetFromSequences(10, [[1, 2, 3, 4, 5, 6]]);
    expect(() => new TrainingExamples(ds, 1).instance(0)).toThrow(/negatives/);
  });
});

describe("evaluationInstances", () => {
  it("keeps only users whose label is a candidate, in the retriever's order", () => {
    const records = fakeCandidates(dataset, "val", { coverage: 0.5 });
    const inst = evaluationInstances(dataset, records, "val");
    const covered = records.filter((r) => r.candidates.includes(r.label));
    expect(inst.map((i) => i.user)).toEqual(covered.map((r) => r.user));
    for (const [k, i] of inst.entries()) {
      expect(i.candidates).toEqual(covered[k]!.candidates);
      expect(i.candidates[i.answerIndex]).toBe(dataset.val[i.user]);
      expect(i.history).toEqual(dataset.train[i.user]!.slice(-20));
    }
  });

  it("test history is train + val", () => {
    const records = fakeCandidates(dataset, "test", { coverage: 1 });
    const [first] = evaluationInstances(dataset, records, "test");
    expect(first!.history).toEqual([...dataset.train[1]!, dataset.val[1]!].slice(-20));
    expect(first!.history.at(-1)).toBe(dataset.val[1]);
  });

  it("rejects candidates made for another split", () => {
    const records = fakeCandidates(dataset, "val").map((r) => ({ ...r, label: r.label + 1 }));
    expect(() => evaluationInstances(dataset, records, "val")).toThrow(/differs from the dataset/);
  });

  it("maps items to titles", () => {
    const ds = datasetFromSequences(30, [[1, 2, 3, 4, 5]]);
    const ex = toRankingExample(ds, {
      split: "val",
      user: 1,
      history: [1, 2],
      candidates: [3, 4],
      answerIndex: 0,
    });
    expect(ex).toEqual({ history: ["I1", "I2"], candidates: ["I3", "I4"] });
  });
});
