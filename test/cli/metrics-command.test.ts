import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseRanked } from "../../src/cli/per-user-files.js";
import { EXIT_INPUT, EXIT_OK } from "../../src/cli/program.js";
import { metricsFromRanks } from "../../src/eval/metrics.js";
import { formatRanked, type RankedRecord, splitMetrics } from "../../src/ranker/rank.js";
import { type CandidateRecord, formatCandidates } from "../../src/retrievers/candidates.js";
import { runCaptured } from "./capture.js";

const dir = mkdtempSync(join(tmpdir(), "llamarec-metrics-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines = (rows: [number, number, number][]) =>
  `${rows.map(([user, label, rank]) => JSON.stringify({ user, label, rank })).join("\n")}\n`;

describe("llamarec metrics", () => {
  const retriever = join(dir, "retriever.jsonl");
  const ranker = join(dir, "ranker.jsonl");
  writeFileSync(
    retriever,
    lines([
      [1, 10, 3],
      [2, 11, 25],
      [3, 12, 20],
      [4, 13, 1],
    ]),
  );
  writeFileSync(
    ranker,
    lines([
      [1, 10, 1],
      [3, 12, 2],
      [4, 13, 5],
    ]),
  );

  it("recomputes metrics from per-user results", async () => {
    const r = await runCaptured(["metrics", retriever, "--ks", "1,5", "--json"]);
    expect(r.code).toBe(EXIT_OK);
    const { users, metrics } = JSON.parse(r.out);
    expect(users).toBe(4);
    expect(metrics["Recall@1"]).toBe(0.25);
    expect(metrics["Recall@5"]).toBe(0.5);
    expect(metrics["MRR@5"]).toBeCloseTo((1 / 3 + 1) / 4, 12);
  });

  it("prints the two-stage table", async () => {
    const r = await runCaptured(["metrics", retriever, "--ranker", ranker, "--ks", "1,10"]);
    expect(r.code).toBe(EXIT_OK);
    // overall Recall@1: users 1 (ranker rank 1) out of 4
    expect(r.out).toMatch(/\| overall Recall\s+\|\s+4 \| 0\.2500 \| 0\.7500 \|/);
    expect(r.out).toMatch(/\| ranker \(subset\) Recall\s+\|\s+3 \| 0\.3333 \| 1\.0000 \|/);
  });

  it("names the file and line of a bad result row", async () => {
    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, '{"user":1,"label":2,"rank":1}\n{"user":2,"label":2}\n');
    const r = await runCaptured(["metrics", bad]);
    expect(r.code).toBe(EXIT_INPUT);
    expect(r.err).toContain('bad.jsonl:2: field "rank"');
  });
});

describe("llamarec metrics reads the files llamarec writes (candidates.jsonl, ranked.jsonl)", () => {
  // Two splits, 3 users; user 3's test label is not among its candidates.
  const records: CandidateRecord[] = [
    { split: "val", user: 1, label: 10, labelRank: 2, candidates: [11, 10, 12], scores: [3, 2, 1] },
    { split: "val", user: 2, label: 20, labelRank: 1, candidates: [20, 21, 22], scores: [3, 2, 1] },
    { split: "val", user: 3, label: 30, labelRank: 3, candidates: [31, 32, 30], scores: [3, 2, 1] },
    { split: "test", user: 1, label: 13, labelRank: 3, candidates: [11, 12, 13], scores: [3, 2, 1] },
    { split: "test", user: 2, label: 23, labelRank: 1, candidates: [23, 21, 22], scores: [3, 2, 1] },
    { split: "test", user: 3, label: 39, labelRank: 40, candidates: [31, 32, 33], scores: [3, 2, 1] },
  ];
  const ranked: RankedRecord[] = [
    {
      split: "val",
      user: 1,
      label: 10,
      candidates: [10, 11, 12],
      scores: [-0.1, -2, -3],
      labelRankBefore: 2,
      labelRankAfter: 1,
    },
    {
      split: "val",
      user: 2,
      label: 20,
      candidates: [21, 20, 22],
      scores: [-0.5, -1, -3],
      labelRankBefore: 1,
      labelRankAfter: 2,
    },
    {
      split: "val",
      user: 3,
      label: 30,
      candidates: [30, 31, 32],
      scores: [-0.2, -2, Number.NEGATIVE_INFINITY],
      labelRankBefore: 3,
      labelRankAfter: 1,
    },
    {
      split: "test",
      user: 1,
      label: 13,
      candidates: [12, 11, 13],
      scores: [-0.1, -2, -3],
      labelRankBefore: 3,
      labelRankAfter: 3,
    },
    {
      split: "test",
      user: 2,
      label: 23,
      candidates: [23, 21, 22],
      scores: [-0.1, -2, -3],
      labelRankBefore: 1,
      labelRankAfter: 1,
    },
  ];
  const candidatesFile = join(dir, "candidates.jsonl");
  const rankedFile = join(dir, "ranked.jsonl");
  writeFileSync(candidatesFile, formatCandidates(records));
  writeFileSync(rankedFile, formatRanked(ranked));
  const ks = [1, 2, 3];

  it("candidates.jsonl: the retriever's metrics per split from labelRank", async () => {
    const r = await runCaptured(["metrics", candidatesFile, "--ks", "1,2,3", "--json"]);
    expect(r.code).toBe(EXIT_OK);
    const json = JSON.parse(r.out);
    for (const split of ["val", "test"] as const) {
      const ranks = records.filter((x) => x.split === split).map((x) => x.labelRank);
      expect(json[split]).toEqual({ users: 3, metrics: metricsFromRanks(ranks, ks) });
    }
    const table = await runCaptured(["metrics", candidatesFile, "--ks", "1,2,3", "--split", "test"]);
    expect(table.code).toBe(EXIT_OK);
    expect(table.out).toMatch(/\| test retriever Recall\s+\|\s+3 \| 0\.3333 \| 0\.3333 \| 0\.6667 \|/);
    expect(table.out).not.toContain("val");
  });

  it("candidates.jsonl --ranker ranked.jsonl: the two-stage report of ranker/metrics.json", async () => {
    const r = await runCaptured([
      "metrics",
      candidatesFile,
      "--ranker",
      rankedFile,
      "--ks",
      "1,2,3",
      "--json",
    ]);
    expect(r.code).toBe(EXIT_OK);
    const json = JSON.parse(r.out);
    for (const split of ["val", "test"] as const) {
      const expected = splitMetrics(
        records.filter((x) => x.split === split),
        ranked.filter((x) => x.split === split),
        20,
        ks,
      );
      expect(json[split]).toEqual(JSON.parse(JSON.stringify(expected)));
    }
    expect(json.val.rankerOnSubset["Recall@1"]).toBeCloseTo(2 / 3, 12);
    expect(json.test.subsetUsers).toBe(2);
    const table = await runCaptured(["metrics", candidatesFile, "--ranker", rankedFile, "--ks", "1,2"]);
    expect(table.out).toMatch(/\| test overall Recall\s+\|\s+3 \| 0\.3333 \| 0\.3333 \|/);
  });

  it("ranked.jsonl alone: ranker and retriever on the ranked users, with a hint for overall metrics", async () => {
    const r = await runCaptured(["metrics", rankedFile, "--ks", "1,2"]);
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).toMatch(/\| val ranker \(subset\) Recall\s+\|\s+3 \| 0\.6667 \| 1\.0000 \|/);
    expect(r.out).toContain("--ranker");
  });

  it("refuses pairs that do not make a two-stage report, and bad lines, with exit 2", async () => {
    const swapped = await runCaptured(["metrics", rankedFile, "--ranker", candidatesFile]);
    expect(swapped.code).toBe(EXIT_INPUT);
    expect(swapped.err).toMatch(/ranked\.jsonl is ranker output.*candidates\.jsonl first/);
    const bad = join(dir, "bad-ranked.jsonl");
    writeFileSync(
      bad,
      `${formatRanked(ranked.slice(0, 1))}{"split":"val","user":2,"label":20,"labelRankBefore":1,"labelRankAfter":3,"candidates":[20,21,22],"scores":[1,2,3]}\n`,
    );
    const r = await runCaptured(["metrics", bad]);
    expect(r.code).toBe(EXIT_INPUT);
    expect(r.err).toContain('bad-ranked.jsonl:2: field "labelRankAfter"');
    const folder = await runCaptured(["metrics", dir]);
    expect(folder.code).toBe(EXIT_INPUT);
    expect(folder.err).toMatch(/is a folder/);
    const split = await runCaptured(["metrics", candidatesFile, "--split", "train"]);
    expect(split.code).toBe(EXIT_INPUT);
  });

  it("parseRanked reads back exactly what formatRanked writes", () => {
    expect(parseRanked(formatRanked(ranked), "x")).toEqual(ranked);
  });
});
