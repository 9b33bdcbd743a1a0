import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { syntheticDataset } from "../../../src/data/index.js";
import { rankRun } from "../../../src/ranker/rank-run.js";
import { trainRankerRun } from "../../../src/ranker/training/ranker-run.js";
import { writeCandidates } from "../../../src/retrievers/candidates.js";
import { datasetRef, runPaths, writeRunConfig } from "../../../src/run/index.js";
import { writeTinyLlama } from "../../fixtures/tiny-llama.js";
import { fakeCandidates } from "./fixtures.js";

const { dataset } = syntheticDataset(
  { numUsers: 14, numItems: 40, numClusters: 4, minSeqLength: 6, maxSeqLength: 8, seed: 4 },
  { minItemCount: 1 },
);
const prompt = { numCandidates: 5, maxHistory: 3, maxTitleTokens: 8 };
let dir = "";
let runDir = "";
let tokenizer = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llamarec-ranker-run-"));
  tokenizer = (await writeTinyLlama(join(dir, "base"), { seed: 1 })).gguf;
  runDir = join(dir, "run");
  await writeRunConfig(runDir, {
    version: 1,
    createdAt: new Date().toISOString(),
    dataset: datasetRef(dataset),
  });
  await writeCandidates(runPaths(runDir).retriever.candidates, [
    ...fakeCandidates(dataset, "val", { coverage: 0.8, count: 5, seed: 1 }),
    ...fakeCandidates(dataset, "test", { coverage: 0.7, count: 5, seed: 2 }),
  ]);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("trainRankerRun + rankRun", () => {
  it("trains a scratch ranker into the run, ranks, and the saved model.gguf reproduces the metrics", async () => {
    const result = await trainRankerRun({
      runDir,
      dataset,
      model: "scratch:tiny",
      tokenizer,
      prompt,
      training: {
        batchSize: 4,
        microBatchSize: 4,
        maxSteps: 6,
        valEvery: 3,
        warmupSteps: 1,
        lr: 2e-3,
        logEvery: 1,
      },
      exportJsonl: join(runDir, "ranker", "export"),
    });
    const rankerDir = join(runDir, "ranker");
    for (const f of [
      "config.json",
      "train-log.jsonl",
      "model.gguf",
      "ranked.jsonl",
      "metrics.json",
      "train-summary.json",
      "export/train.jsonl",
      "export/val.jsonl",
      "export/test.jsonl",
    ]) {
      expect(existsSync(join(rankerDir, f)), f).toBe(true);
    }
    expect(result.summary!.steps).toBe(6);
    const metrics = JSON.parse(readFileSync(join(rankerDir, "metrics.json"), "utf8"));
    expect(metrics.splits.val.users).toBe(dataset.numUsers);
    expect(metrics.splits.test.rankerOnSubset["NDCG@10"]).toBeGreaterThan(0);

    // The GGUF written at the end holds the best weights: the engine on it ranks identically.
    const again = await rankRun({ runDir, dataset, backend: "engine" });
    expect(again.metrics.val!.rankerOnSubset).toEqual(result.rank!.metrics.val!.rankerOnSubset);
    expect(again.metrics.test!.rankerOnSubset).toEqual(result.rank!.metrics.test!.rankerOnSubset);
    expect(again.ranked.map((r) => r.candidates)).toEqual(result.rank!.ranked.map((r) => r.candidates));
  }, 120_000);

  it("refuses a run whose dataset differs", async () => {
    const other = syntheticDataset(
      { numUsers: 14, numItems: 40, numClusters: 4, minSeqLength: 6, maxSeqLength: 8, seed: 5 },
      { minItemCount: 1 },
    ).dataset;
    await expect(rankRun({ runDir, dataset: other, backend: "engine" })).rejects.toThrow(
      /is not the one run/,
    );
  });

  it("export-only writes the JSONL sets without training", async () => {
    const out = join(dir, "export-only");
    const r = await trainRankerRun({
      runDir,
      dataset,
      model: "scratch:tiny",
      tokenizer,
      prompt,
      exportJsonl: out,
      exportOnly: true,
    });
    expect(r.summary).toBeNull();
    expect(r.exported!.train).toBeGreaterThan(0);
    const line = JSON.parse(readFileSync(join(out, "val.jsonl"), "utf8").split("\n")[0]!);
    expect(line.completion).toMatch(/^[A-E]<\/s>$/);
  });
});
