import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCandidates } from "../../src/retrievers/candidates.js";
import { registerRetriever } from "../../src/retrievers/registry.js";
import { evaluateRun } from "../../src/retrievers/run-evaluation.js";
import { trainRetriever } from "../../src/retrievers/trainer.js";
import { runPaths } from "../../src/run/index.js";
import { setLogLevel } from "../../src/util/log.js";
import { createScriptedModel, disjointDataset, skewedDataset } from "./fixtures.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "llamarec-trainer-"));
  setLogLevel("error");
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  setLogLevel("info");
});

const readJson = (path: string) => JSON.parse(readFileSync(path, "utf8"));
const readLog = (path: string) =>
  readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => {
      const { elapsed: _e, ...rest } = JSON.parse(l);
      return rest;
    });

// Validation Recall@10 by optimizer steps: improves to 0.6 at step 20, then never again.
const SCRIPT: Record<number, number> = {
  0: 0.2,
  5: 0.5,
  10: 0.5,
  15: 0.4,
  20: 0.6,
  25: 0.1,
  30: 0.1,
  35: 0.1,
};
registerRetriever("scripted", "test model with scripted validation quality", (o) =>
  createScriptedModel(o.numItems, Number(o.numUsers ?? 10), (steps) => SCRIPT[steps - (steps % 5)] ?? 0.05),
);

describe("early stopping and model selection", () => {
  it("stops after `patience` validations without a strictly better metric and keeps the best weights", async () => {
    const dataset = disjointDataset(10);
    const runDir = join(dir, "scripted");
    const result = await trainRetriever({
      dataset,
      model: "scripted",
      modelOptions: { numUsers: 10 },
      training: {
        batchSize: 4,
        maxLen: 4,
        valEvery: 5,
        patience: 3,
        maxIterations: 100,
        evalBatchSize: 3,
        logEvery: 5,
      },
      runDir,
    });
    // 0.5 at step 10 is not strictly better than 0.5 at step 5 (patience 1), 0.4 (2), then 0.6 resets;
    // 0.1 ×3 after it exhausts patience 3 at step 35.
    expect(result.stoppedBy).toBe("early-stopping");
    expect(result.iterations).toBe(35);
    expect(result.bestIteration).toBe(20);
    expect(result.bestValue).toBeCloseTo(0.6, 6);
    const metrics = readJson(runPaths(runDir).retriever.metrics);
    expect(metrics.val.metrics["Recall@10"]).toBeCloseTo(0.6, 6);
    expect(metrics.selection).toMatchObject({
      bestIteration: 20,
      iterations: 35,
      validations: 8,
      stoppedBy: "early-stopping",
    });
    const vals = readLog(runPaths(runDir).retriever.trainLog).filter((e) => e.type === "val");
    expect(vals.map((e) => e.iteration)).toEqual([0, 5, 10, 15, 20, 25, 30, 35]);
    expect(vals.map((e) => e.patience)).toEqual([0, 0, 1, 2, 0, 1, 2, 3]);
  });
});

const popTraining = {
  batchSize: 8,
  maxLen: 12,
  valEvery: 10,
  patience: 100,
  maxIterations: 45,
  evalBatchSize: 16,
  logEvery: 5,
};

describe("a pop training run folder", () => {
  const dataset = skewedDataset(60, 80, 6, 20);
  let runDir: string;
  beforeAll(async () => {
    runDir = join(dir, "pop");
    await trainRetriever({ dataset, model: "pop", training: popTraining, runDir });
  });

  it("writes config, model, log, metrics with every k and the evaluation policy", () => {
    const p = runPaths(runDir);
    const config = readJson(p.config);
    expect(config.dataset.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(config.retriever.training).toMatchObject({
      lr: 1e-3,
      weightDecay: 0.01,
      adamEps: 1e-9,
      maxGradNorm: 5,
    });
    expect(config.retriever.modelConfig).toEqual({ numItems: 80 });
    expect(readJson(p.retriever.modelJson)).toMatchObject({ model: "pop", config: { numItems: 80 } });
    const metrics = readJson(p.retriever.metrics);
    for (const split of ["val", "test"]) {
      for (const k of [1, 5, 10, 20, 50]) {
        for (const m of ["Recall", "MRR", "NDCG"])
          expect(metrics[split].metrics[`${m}@${k}`]).toBeTypeOf("number");
      }
    }
    expect(metrics.policy.historyExclusion).toMatch(/^full: /);
    expect(metrics.policy.ties).toMatch(/^pessimistic/);
    // 45 steps: validations at 0, 10, 20, 30, 40 and a final one at 45.
    expect(metrics.selection).toMatchObject({ iterations: 45, validations: 6, stoppedBy: "max-iterations" });
    const log = readLog(p.retriever.trainLog);
    expect(log.filter((e) => e.type === "train").map((e) => e.iteration)).toEqual([
      5, 10, 15, 20, 25, 30, 35, 40, 45,
    ]);
    expect(log.every((e) => e.type !== "train" || (Number.isFinite(e.loss) && e.lr === 1e-3))).toBe(true);
  });

  it("learns popularity: better than chance and loss goes down", () => {
    const metrics = readJson(runPaths(runDir).retriever.metrics);
    expect(metrics.test.metrics["Recall@10"]).toBeGreaterThan(2 * (10 / 80));
    const losses = readLog(runPaths(runDir).retriever.trainLog)
      .filter((e) => e.type === "train")
      .map((e) => e.loss);
    expect(losses.at(-1)).toBeLessThan(losses[0]);
  });

  it("candidates: top-k by score without history, labelRank consistent, coverage = Recall@20", async () => {
    const records = await readCandidates(runPaths(runDir).retriever.candidates);
    expect(records.filter((r) => r.split === "val")).toHaveLength(60);
    expect(records.filter((r) => r.split === "test")).toHaveLength(60);
    for (const r of records) {
      expect(r.candidates).toHaveLength(20);
      for (let i = 1; i < r.scores.length; i++) expect(r.scores[i]!).toBeLessThanOrEqual(r.scores[i - 1]!);
      const history =
        r.split === "val" ? dataset.train[r.user]! : [...dataset.train[r.user]!, dataset.val[r.user]!];
      for (const c of r.candidates) if (c !== r.label) expect(history.slice(-12)).not.toContain(c);
      expect(r.label).toBe(r.split === "val" ? dataset.val[r.user] : dataset.test[r.user]);
      expect(r.candidates.includes(r.label)).toBe(r.labelRank <= 20);
    }
    const metrics = readJson(runPaths(runDir).retriever.metrics);
    expect(metrics.candidates.test.share).toBe(metrics.test.metrics["Recall@20"]);
  });

  it("evaluateRun reloads the model and reproduces metrics.json exactly", async () => {
    const result = await evaluateRun(runDir, dataset);
    const metrics = readJson(runPaths(runDir).retriever.metrics);
    expect(result.test).toEqual(metrics.test);
    expect(result.val).toEqual(metrics.val);
    expect(result.matchesRecorded).toBe(true);
  });

  it("evaluateRun refuses a different dataset", async () => {
    await expect(evaluateRun(runDir, skewedDataset(60, 80, 6, 20, 2))).rejects.toThrow(/not the one run/);
  });

  it("valExclude: validation during training under its own exclusion, the test under the run's", async () => {
    const other = join(dir, "pop-val-none");
    await trainRetriever({
      dataset,
      model: "pop",
      training: { ...popTraining, valExclude: "none" },
      runDir: other,
    });
    expect(readJson(runPaths(other).config).retriever.training.valExclude).toBe("none");
    const valRecall = (d: string) =>
      readLog(runPaths(d).retriever.trainLog)
        .filter((e) => e.type === "val")
        .map((e) => e.metrics["Recall@10"] as number);
    const full = valRecall(runDir);
    const none = valRecall(other);
    expect(none).toHaveLength(full.length);
    // Popular history items stay in the ranking above the labels: never better, worse once trained (the
    // untrained pop model scores 0 everywhere: both 0 at iteration 0).
    expect(full[0]).toBe(0);
    for (let i = 1; i < full.length; i++) expect(none[i]!).toBeLessThan(full[i]!);
    const metrics = readJson(runPaths(other).retriever.metrics);
    expect(metrics.policy.validationDuringTraining).toMatch(/^history exclusion none/);
    expect(metrics.policy.historyExclusion).toMatch(/^full: /);
    // The final test is under the run's exclusion: the recomputation (which uses it) matches.
    expect((await evaluateRun(other, dataset)).matchesRecorded).toBe(true);
  });

  it("refuses to overwrite a finished run without --resume", async () => {
    await expect(trainRetriever({ dataset, model: "pop", training: popTraining, runDir })).rejects.toThrow(
      /already holds a training run/,
    );
  });
});
