import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { syntheticDataset } from "../../src/data/index.js";
import { createRetriever } from "../../src/retrievers/registry.js";
import { evaluateRun } from "../../src/retrievers/run-evaluation.js";
import { trainRetriever } from "../../src/retrievers/trainer.js";
import { runPaths } from "../../src/run/index.js";
import { setLogLevel } from "../../src/util/log.js";

// The real model through the trainer, tiny: checks it learns, resumes exactly and re-evaluates exactly.
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "llamarec-train-lru-"));
  setLogLevel("error");
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  setLogLevel("info");
});

const { dataset } = syntheticDataset({ numUsers: 60, numItems: 40, numClusters: 5, seed: 11 });
const training = {
  batchSize: 8,
  maxLen: 12,
  valEvery: 10,
  patience: 50,
  maxIterations: 60,
  evalBatchSize: 32,
  logEvery: 10,
};

function outputs(runDir: string) {
  const p = runPaths(runDir);
  const metrics = JSON.parse(readFileSync(p.retriever.metrics, "utf8"));
  delete metrics.selection.trainingSeconds;
  return {
    metrics,
    model: readFileSync(p.retriever.model).toString("base64"),
    candidates: readFileSync(p.retriever.candidates, "utf8"),
  };
}

async function interruptedThenResumed(runDir: string, modelOptions: Record<string, unknown>) {
  const crash = (i: number) => {
    if (i === 27) throw new Error("simulated crash");
  };
  const args = { dataset, model: "lru", modelOptions, training, runDir };
  await expect(trainRetriever({ ...args, onIteration: crash })).rejects.toThrow("simulated crash");
  await trainRetriever({ ...args, resume: true });
  return outputs(runDir);
}

describe("LRU through the trainer", () => {
  it("learns the synthetic cluster structure far better than popularity", async () => {
    const lru = await trainRetriever({
      dataset,
      model: "lru",
      modelOptions: { hiddenDim: 16, numBlocks: 1, dropout: 0.1 },
      training: { ...training, maxIterations: 120 },
      runDir: join(dir, "lru"),
    });
    const pop = await trainRetriever({
      dataset,
      model: "pop",
      training: { ...training, maxIterations: 120 },
      runDir: join(dir, "pop"),
    });
    expect(lru.evaluation.test.metrics["NDCG@10"]!).toBeGreaterThan(
      1.5 * pop.evaluation.test.metrics["NDCG@10"]!,
    );
    const again = await evaluateRun(join(dir, "lru"), dataset);
    expect(again.matchesRecorded).toBe(true);
  });

  it("resumes exactly without dropout (weights, AdamW moments, batch order)", async () => {
    const opts = { hiddenDim: 8, numBlocks: 1, dropout: 0 };
    await trainRetriever({
      dataset,
      model: "lru",
      modelOptions: opts,
      training,
      runDir: join(dir, "nodrop-ref"),
    });
    expect(await interruptedThenResumed(join(dir, "nodrop-resumed"), opts)).toEqual(
      outputs(join(dir, "nodrop-ref")),
    );
  });

  it("resumes exactly with dropout (the model checkpoints its dropout stream)", async () => {
    const probe = createRetriever("lru", { numItems: 5, dropout: 0.2 });
    expect(probe.getRandomState).toBeTypeOf("function");
    expect(probe.setRandomState).toBeTypeOf("function");
    const opts = { hiddenDim: 8, numBlocks: 1, dropout: 0.2 };
    await trainRetriever({
      dataset,
      model: "lru",
      modelOptions: opts,
      training,
      runDir: join(dir, "drop-ref"),
    });
    expect(await interruptedThenResumed(join(dir, "drop-resumed"), opts)).toEqual(
      outputs(join(dir, "drop-ref")),
    );
  });
});
