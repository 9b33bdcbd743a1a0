/**
 * Run folders with the files the stages write (docs/formats.md), filled with chosen numbers, so report
 * tests know every expected cell. Real runs are exercised by the end-to-end test.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export type MetricMap = Record<string, number>;

/** Six paper metrics from (MRR, NDCG, Recall) at 5 and 10. */
export function paperMetrics(
  m5: number,
  n5: number,
  r5: number,
  m10: number,
  n10: number,
  r10: number,
): MetricMap {
  return {
    "MRR@1": m5 / 2,
    "NDCG@1": m5 / 2,
    "Recall@1": m5 / 2,
    "MRR@5": m5,
    "NDCG@5": n5,
    "Recall@5": r5,
    "MRR@10": m10,
    "NDCG@10": n10,
    "Recall@10": r10,
  };
}

export interface FixtureRun {
  model?: string;
  dataset?: string;
  test: MetricMap;
  /** Test users whose label is in the top 20. */
  covered?: number;
  users?: number;
  stoppedBy?: string;
  /** config.json retriever.training.maxEpochs (absent when not given). */
  maxEpochs?: number;
  /** config.json stage records, as `llamarec run` writes them. */
  stages?: Record<string, { status: string; wallSeconds: number; peakRssMiB: number }>;
  ranker?: {
    model: string;
    mode: "lora" | "full";
    totalParameters: number;
    trainableParameters: number;
    retrieverOnSubset: MetricMap;
    rankerOnSubset: MetricMap;
    overall: MetricMap;
  };
}

function json(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

export function writeFixtureRun(dir: string, run: FixtureRun): string {
  const users = run.users ?? 610;
  const covered = run.covered ?? 87;
  mkdirSync(join(dir, "retriever"), { recursive: true });
  json(join(dir, "config.json"), {
    version: 1,
    createdAt: "2026-11-30T12:00:00.000Z",
    dataset: {
      name: run.dataset ?? "ml-latest-small",
      fingerprint: "sha256:0",
      numUsers: users,
      numItems: 3650,
    },
    retriever: {
      model: run.model ?? "lru",
      modelOptions: {},
      training: run.maxEpochs === undefined ? {} : { maxEpochs: run.maxEpochs },
    },
    ...(run.stages
      ? {
          stages: Object.fromEntries(
            Object.entries(run.stages).map(([name, r]) => [
              name,
              { ...r, inputsHash: "sha256:0", outputs: [], startedAt: "2026-11-30T12:00:00.000Z" },
            ]),
          ),
        }
      : {}),
  });
  json(join(dir, "retriever", "metrics.json"), {
    model: run.model ?? "lru",
    dataset: { name: run.dataset ?? "ml-latest-small", fingerprint: "sha256:0" },
    selection: {
      metric: "Recall@10",
      split: "val",
      bestIteration: 1000,
      bestValue: 0.1,
      iterations: 1500,
      validations: 7,
      stoppedBy: run.stoppedBy ?? "early-stopping",
      trainingSeconds: 600,
    },
    policy: {},
    val: { users, metrics: run.test },
    test: { users, metrics: run.test },
    candidates: {
      count: 20,
      val: { users, covered, share: covered / users },
      test: { users, covered, share: covered / users },
    },
  });
  const log = [
    {
      type: "val",
      iteration: 0,
      epoch: 0,
      metrics: { "Recall@10": 0.01 },
      improved: true,
      patience: 0,
      elapsed: 1,
    },
    { type: "train", iteration: 100, epoch: 1, loss: 8.1, lr: 0.001, elapsed: 10 },
    { type: "train", iteration: 200, epoch: 2, loss: 7.6, lr: 0.001, elapsed: 20 },
    {
      type: "val",
      iteration: 250,
      epoch: 2,
      metrics: { "Recall@10": 0.05 },
      improved: true,
      patience: 0,
      elapsed: 25,
    },
    { type: "train", iteration: 300, epoch: 3, loss: 7.2, lr: 0.001, elapsed: 30 },
    {
      type: "val",
      iteration: 500,
      epoch: 5,
      metrics: { "Recall@10": 0.08 },
      improved: true,
      patience: 0,
      elapsed: 50,
    },
  ];
  writeFileSync(
    join(dir, "retriever", "train-log.jsonl"),
    `${log.map((l) => JSON.stringify(l)).join("\n")}\n`,
  );
  if (run.ranker) {
    const r = run.ranker;
    mkdirSync(join(dir, "ranker"), { recursive: true });
    json(join(dir, "ranker", "config.json"), {
      version: 1,
      createdAt: "2026-11-30T12:10:00.000Z",
      model: r.model,
      tokenizer: null,
      prompt: {},
      training: { mode: r.mode },
      datasetFingerprint: "sha256:0",
    });
    json(join(dir, "ranker", "train-summary.json"), {
      steps: 40,
      totalSteps: 40,
      examplesSeen: 640,
      seconds: 120,
      stoppedEarly: false,
      bestStep: 40,
      bestMetric: 0.3,
      bestValidation: null,
      trainableParameters: r.trainableParameters,
      totalParameters: r.totalParameters,
      finalLoss: 2.9,
      artifacts: {},
    });
    const split = {
      numCandidates: 20,
      users,
      subsetUsers: covered,
      retriever: run.test,
      retrieverOnSubset: r.retrieverOnSubset,
      rankerOnSubset: r.rankerOnSubset,
      overall: r.overall,
      missingRankerUsers: 0,
    };
    json(join(dir, "ranker", "metrics.json"), {
      backend: "engine",
      model: r.model,
      orders: 1,
      prompts: covered * 2,
      seconds: 12.5,
      splits: { val: split, test: split },
    });
    const rlog = [
      {
        type: "train",
        step: 10,
        epoch: 0,
        loss: 3.1,
        lr: 1e-4,
        gradNorm: 1,
        examplesPerSecond: 5,
        elapsed: 30,
      },
      {
        type: "val",
        step: 20,
        users: 50,
        seconds: 3,
        metrics: { "NDCG@10": 0.3, "Recall@10": 0.55 },
        best: true,
      },
      {
        type: "train",
        step: 20,
        epoch: 0,
        loss: 2.9,
        lr: 1e-4,
        gradNorm: 1,
        examplesPerSecond: 5,
        elapsed: 60,
      },
      {
        type: "val",
        step: 40,
        users: 50,
        seconds: 3,
        metrics: { "NDCG@10": 0.31, "Recall@10": 0.6 },
        best: true,
      },
    ];
    writeFileSync(
      join(dir, "ranker", "train-log.jsonl"),
      `${rlog.map((l) => JSON.stringify(l)).join("\n")}\n`,
    );
  }
  return dir;
}
