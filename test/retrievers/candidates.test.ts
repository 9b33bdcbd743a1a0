import { describe, expect, it } from "vitest";
import {
  type CandidateRecord,
  formatCandidates,
  labelCoverage,
  parseCandidates,
  shortestFloat32,
} from "../../src/retrievers/candidates.js";
import { evaluateSplit, topItems } from "../../src/retrievers/evaluate.js";
import type { SequentialRetriever } from "../../src/retrievers/types.js";
import { datasetFromSequences } from "./fixtures.js";

const record = (over: Partial<CandidateRecord> = {}): CandidateRecord => ({
  split: "test",
  user: 1,
  label: 3,
  labelRank: 2,
  candidates: [5, 3, 1],
  scores: [0.5, 0.25, -1],
  ...over,
});

describe("candidates.jsonl", () => {
  it("prints float32 scores in their shortest exact form", () => {
    const f = [0.1, 1 / 3, -7.25, 123456.789, 1e-20].map(Math.fround);
    const printed = f.map(shortestFloat32);
    expect(printed.slice(0, 3)).toEqual([0.1, 0.33333334, -7.25]);
    expect(printed.map(Math.fround)).toEqual(f);
    expect(shortestFloat32(0.1)).toBe(0.1); // not a float32: unchanged
    const line = formatCandidates([record({ scores: [f[0]!, f[1]!, f[2]!] })]);
    expect(line).toContain('"scores":[0.1,0.33333334,-7.25]');
  });

  it("round-trips, one line per record, fixed key order", () => {
    const f3 = Math.fround(0.3);
    const text = formatCandidates([record(), record({ split: "val", user: 2, scores: [0.5, 0.25, f3] })]);
    expect(text.split("\n")[0]).toBe(
      '{"split":"test","user":1,"label":3,"labelRank":2,"candidates":[5,3,1],"scores":[0.5,0.25,-1]}',
    );
    const parsed = parseCandidates(text, "c.jsonl");
    expect(parsed[0]).toEqual(record());
    expect(parsed[1]!.scores.map(Math.fround)).toEqual([0.5, 0.25, f3]);
  });

  it("names file, line and field of a bad row", () => {
    const good = formatCandidates([record()]);
    expect(() => parseCandidates(`${good}{"split":"train"}\n`, "c.jsonl")).toThrow(
      /c\.jsonl:2: field "split"/,
    );
    expect(() => parseCandidates(`${good}not json\n`, "c.jsonl")).toThrow(/c\.jsonl:2: not valid JSON/);
    const bad = (o: object) => parseCandidates(JSON.stringify({ ...record(), ...o }), "c.jsonl");
    expect(() => bad({ scores: [1, 2] })).toThrow(/c\.jsonl:1: field "scores"/);
    expect(() => bad({ candidates: [1, 1, 2] })).toThrow(/appears twice/);
    expect(() => bad({ labelRank: 0 })).toThrow(/field "labelRank"/);
    expect(() => parseCandidates(good + good, "c.jsonl")).toThrow(/c\.jsonl:2: user 1 appears twice/);
  });

  it("coverage counts labels among the candidates per split", () => {
    const records = [record(), record({ user: 2, label: 9, labelRank: 40 }), record({ split: "val" })];
    expect(labelCoverage(records, "test")).toEqual({ users: 2, covered: 1, share: 0.5 });
  });
});

describe("top items", () => {
  it("orders by score, ties to the smaller id, skips padding and excluded items", () => {
    const scores = new Float32Array([99, 1, 3, 3, 0, 5, 3]);
    expect(topItems(scores, 3, new Set([5]))).toEqual({ items: [2, 3, 6], scores: [3, 3, 3] });
    expect(topItems(scores, 10, new Set()).items).toEqual([5, 2, 3, 6, 1, 4]);
  });
});

describe("split evaluation", () => {
  // Scores item i as i, whatever the input: the best items are the largest ids.
  const byId = (numItems: number): SequentialRetriever => ({
    modelName: "by-id",
    config: {},
    numItems,
    parameters: () => [],
    setTraining: () => {},
    lossAndBackward: () => 0,
    scoreNext: (_t, b) => {
      const out = new Float32Array(b * (numItems + 1));
      for (let r = 0; r < b; r++) for (let i = 0; i <= numItems; i++) out[r * (numItems + 1) + i] = i;
      return out;
    },
  });
  const ds = datasetFromSequences("t", 10, [
    [10, 1, 2, 8, 3],
    [9, 7, 5],
  ]);

  it("ranks the label among all items with the input window excluded, label never excluded", () => {
    const opts = { maxLen: 2, batchSize: 1, tie: "pessimistic" as const, candidateCount: 3 };
    const input = evaluateSplit(byId(10), ds, "test", { ...opts, exclude: "input" });
    // User 1: input [1, 2, 8] → window [2, 8] excluded; 10 and 9 rank above label 3, and so do 7, 6, 5, 4.
    expect(input.results[0]).toEqual({
      user: 1,
      label: 3,
      rank: 7,
      candidates: [10, 9, 7],
      scores: [10, 9, 7],
    });
    const full = evaluateSplit(byId(10), ds, "test", { ...opts, exclude: "full" });
    expect(full.results[0]!.rank).toBe(6);
    expect(full.results[0]!.candidates).toEqual([9, 7, 6]);
    const none = evaluateSplit(byId(10), ds, "test", { ...opts, exclude: "none" });
    expect(none.results[0]!.rank).toBe(8);
    // User 2: train [9], val 7 → label 5; window [9, 7] excluded.
    expect(input.results[1]).toMatchObject({ user: 2, label: 5, rank: 4, candidates: [10, 8, 6] });
  });
});
