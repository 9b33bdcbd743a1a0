import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { syntheticDataset } from "../../src/data/index.js";
import { Bert4Rec, clozeMaskRow } from "../../src/retrievers/bert4rec.js";
import { CHECKPOINT_FILE, loadCheckpoint } from "../../src/retrievers/checkpoint.js";
import { modelOptionFlags } from "../../src/retrievers/config-section.js";
import { packBatch } from "../../src/retrievers/positions.js";
import { createRetriever, resolveModelOptions } from "../../src/retrievers/registry.js";
import { evaluateRun } from "../../src/retrievers/run-evaluation.js";
import type { SasRec } from "../../src/retrievers/sasrec.js";
import { trainRetriever } from "../../src/retrievers/trainer.js";
import { runPaths } from "../../src/run/index.js";
import { Rng } from "../../src/tensor/rng.js";
import { InputError } from "../../src/util/errors.js";
import { setLogLevel } from "../../src/util/log.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "llamarec-baselines-"));
  setLogLevel("error");
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  setLogLevel("info");
});

// Clusters visited in a cycle: the next item's cluster is predictable from the last one, popularity is flat.
const { dataset } = syntheticDataset({ numUsers: 80, numItems: 40, numClusters: 5, seed: 11 });
const training = {
  batchSize: 8,
  maxLen: 12,
  lr: 5e-3,
  valEvery: 40,
  patience: 50,
  maxIterations: 160,
  evalBatchSize: 40,
  logEvery: 20,
};
const small = {
  // The default (authors') N(0, 1) embeddings need thousands of steps (docs/results.md); the σ 0.02 start
  // learns this in the steps below. Both inits are checked in "embedding init" below.
  sasrec: { hiddenDim: 16, numBlocks: 1, dropout: 0.1, embeddingInit: "truncated-normal" },
  bert4rec: { hiddenDim: 32, numBlocks: 2, dropout: 0.1, embeddingInit: "truncated-normal" },
  narm: { hiddenDim: 16, dropout: 0.1 },
};

describe("baselines learn the synthetic structure through the shared trainer", () => {
  let popNdcg: number;
  beforeAll(async () => {
    const pop = await trainRetriever({ dataset, model: "pop", training, runDir: join(dir, "pop") });
    popNdcg = pop.evaluation.test.metrics["NDCG@10"]!;
  });
  for (const [model, modelOptions] of Object.entries(small)) {
    it(`${model}: test NDCG@10 far above popularity, run folder re-evaluates identically`, async () => {
      const runDir = join(dir, model);
      // Cloze training labels ~25% of the positions (2–3 per window here) and BERT4Rec has a slow start (the
      // PyTorch reference of the authors' model trains as slowly on the same batches): more labelled rows per
      // step and steps. At 8 × 600 steps, lr 3e-3, only some seeds got above 2× popularity; this setting gives
      // 0.50–0.51 on seeds 42 and 1.
      const steps =
        model === "bert4rec" ? { maxIterations: 600, valEvery: 100, lr: 1e-2, batchSize: 32 } : {};
      const result = await trainRetriever({
        dataset,
        model,
        modelOptions,
        training: { ...training, ...steps },
        runDir,
      });
      const ndcg = result.evaluation.test.metrics["NDCG@10"]!;
      expect(ndcg, `${model} ${ndcg} vs pop ${popNdcg}`).toBeGreaterThan(2 * popNdcg);
      // model.json rebuilds the model (options + context) and the stored metrics are reproduced.
      const again = await evaluateRun(runDir, dataset);
      expect(again.matchesRecorded).toBe(true);
      const described = JSON.parse(readFileSync(runPaths(runDir).retriever.modelJson, "utf8"));
      expect(described.config).toMatchObject({ ...modelOptions, numItems: dataset.numItems, maxLen: 12 });
    }, 180_000);
  }
});

describe("packBatch", () => {
  it("keeps the tokens, a labelled padding position before them, and one masked row for an empty row", () => {
    // Row 0: tokens 5 6 at positions 2, 3 and SASRec's "first item from nothing" label 5 at position 1.
    const tokens = Int32Array.of(0, 0, 5, 6, 0, 0, 0, 0, 0, 7, 8, 9);
    const labels = Int32Array.of(0, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0);
    const p = packBatch(tokens, 3, 4, labels);
    expect([...p.offsets]).toEqual([0, 3, 4, 7]);
    expect([...p.keyStart]).toEqual([1, 1, 0]);
    expect([...p.rows]).toEqual([1, 2, 3, 7, 9, 10, 11]);
    expect([...p.tokens]).toEqual([0, 5, 6, 0, 7, 8, 9]);
    expect([...p.positions]).toEqual([0, 1, 2, 0, 1, 2, 3]);
    expect([...p.lastRows]).toEqual([2, 3, 6]);
    expect([...packBatch(tokens, 3, 4).offsets]).toEqual([0, 2, 3, 6]);
  });
});

describe("model options come from each model's schema", () => {
  it("defaults are filled in and unknown or invalid options name the model and field", () => {
    expect(resolveModelOptions("bert4rec", {})).toMatchObject({ maskProb: 0.25, numHeads: 2, hiddenDim: 64 });
    expect(() => resolveModelOptions("sasrec", { maskProb: 0.3 })).toThrow(InputError);
    expect(() => resolveModelOptions("sasrec", { maskProb: 0.3 })).toThrow(/sasrec has no option "maskProb"/);
    expect(() => resolveModelOptions("narm", { dropout: 1.5 })).toThrow(/narm option "dropout"/);
  });
  it("every option is a flag mapped to retriever.options", () => {
    const flags = new Map(modelOptionFlags().map((f) => [f.key, f]));
    expect(flags.get("maskProb")).toMatchObject({
      flag: "--mask-prob <value>",
      configPath: "retriever.options.maskProb",
    });
    expect(flags.get("numHeads")?.description).toContain("sasrec");
    expect(flags.has("dropout")).toBe(false); // its own section field
  });
  it("the trainer refuses a bad option before writing anything", async () => {
    const runDir = join(dir, "bad-option");
    await expect(
      trainRetriever({ dataset, model: "sasrec", modelOptions: { maskProb: 0.2 }, training, runDir }),
    ).rejects.toThrow(InputError);
    expect(existsSync(runDir)).toBe(false);
  });
});

describe("embedding init of the attention models", () => {
  const sd = (xs: Float32Array) => {
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
  };
  const maxAbs = (xs: Float32Array) => xs.reduce((a, b) => Math.max(a, Math.abs(b)), 0);
  const weights = (model: string, options: Record<string, unknown>) => {
    const m = createRetriever(model, { numItems: 300, maxLen: 50, hiddenDim: 32, ...options }) as
      | SasRec
      | Bert4Rec;
    return { token: m.embedding.token.weight.data, position: m.embedding.position.weight.data, m };
  };
  for (const model of ["sasrec", "bert4rec"]) {
    it(`${model} default: item and position embeddings N(0, 1) as the authors' code, padding row zero`, () => {
      const w = weights(model, {});
      expect(sd(w.token.subarray(32))).toBeGreaterThan(0.95);
      expect(sd(w.token.subarray(32))).toBeLessThan(1.05);
      expect(sd(w.position)).toBeGreaterThan(0.9);
      expect(w.token.subarray(0, 32).every((x) => x === 0)).toBe(true);
    });
    it(`${model} "truncated-normal": embeddings σ 0.02 within ±0.04 like the other weights`, () => {
      const w = weights(model, { embeddingInit: "truncated-normal" });
      for (const e of [w.token.subarray(32), w.position]) {
        expect(maxAbs(e)).toBeLessThanOrEqual(0.04);
        expect(sd(e)).toBeGreaterThan(0.01);
      }
      expect(w.token.subarray(0, 32).every((x) => x === 0)).toBe(true);
      expect(() => weights(model, { embeddingInit: "xavier" })).toThrow(/embeddingInit/);
    });
  }
  it("the other weights stay σ 0.02 under the default", () => {
    const { m } = weights("sasrec", {});
    expect(maxAbs((m as SasRec).blocks.items[0]!.feedForward.conv1.weight.data)).toBeLessThanOrEqual(0.04);
  });
});

describe("batching hooks", () => {
  it("BERT4Rec cloze masking: rate, 80/10/10 rule, labels, budget", () => {
    const rng = new Rng(5);
    const numItems = 1000;
    const L = 200;
    const items = Int32Array.from({ length: L }, (_, t) => (t < 20 ? 0 : t + 1));
    let masked = 0;
    let maskTokens = 0;
    let kept = 0;
    const rows = 200;
    const bad: string[] = [];
    for (let r = 0; r < rows; r++) {
      const tokens = new Int32Array(L);
      const labels = new Int32Array(L);
      clozeMaskRow(items, tokens, labels, { maskProb: 0.25, maxPredictions: 1000, numItems }, rng);
      for (let t = 0; t < L; t++) {
        if (items[t] === 0 && tokens[t]! + labels[t]! !== 0) bad.push(`padding ${r}/${t}`);
        if (labels[t] === 0) {
          if (tokens[t] !== items[t]) bad.push(`unlabelled changed ${r}/${t}`);
          continue;
        }
        if (labels[t] !== items[t]) bad.push(`label ${r}/${t}`);
        masked++;
        if (tokens[t] === numItems + 1) maskTokens++;
        if (tokens[t] === items[t]) kept++;
      }
    }
    expect(bad).toEqual([]);
    expect(masked / (rows * 180)).toBeCloseTo(0.25, 1);
    expect(maskTokens / masked).toBeCloseTo(0.8, 1);
    expect(kept / masked).toBeGreaterThan(0.07);
    const tokens = new Int32Array(L);
    const labels = new Int32Array(L);
    clozeMaskRow(items, tokens, labels, { maskProb: 0.9, maxPredictions: 7, numItems }, rng);
    expect(labels.filter((l) => l > 0).length).toBe(7);
  });

  it("BERT4Rec's masks come from its checkpointed random state", () => {
    const model = new Bert4Rec({
      ...resolveModelOptions("bert4rec", { hiddenDim: 8 }),
      numItems: 40,
      maxLen: 12,
      seed: 1,
    } as never);
    const opts = { batchSize: 8, maxLen: 12, slidingWindow: 1, seed: 1 };
    const source = model.trainingBatches(dataset.train, opts);
    source.batch(0, 0);
    const state = model.getRandomState();
    const next = source.batch(0, 1);
    source.batch(0, 2);
    model.setRandomState(state);
    expect(source.batch(0, 1)).toEqual(next);
  });

  it("NARM trains on every prefix of every history, the label at the last position", () => {
    const model = createRetriever("narm", { numItems: dataset.numItems, maxLen: 12, hiddenDim: 8 });
    const source = model.trainingBatches!(dataset.train, {
      batchSize: 16,
      maxLen: 12,
      slidingWindow: 1,
      seed: 3,
    });
    const prefixes = dataset.train.reduce((n, s) => n + Math.max(0, (s?.length ?? 0) - 1), 0);
    expect(source.batchesPerEpoch).toBe(Math.ceil(prefixes / 16));
    const b = source.batch(0, 0);
    for (let r = 0; r < b.batchSize; r++) {
      const row = b.labels.subarray(r * 12, (r + 1) * 12);
      expect([...row.subarray(0, 11)].every((x) => x === 0)).toBe(true);
      expect(row[11]).toBeGreaterThan(0);
      expect(b.tokens[(r + 1) * 12 - 1]).toBeGreaterThan(0);
    }
    expect(() => model.lossAndBackward({ ...b, labels: b.labels.map((_, i) => (i === 0 ? 1 : 0)) })).toThrow(
      /last position/,
    );
  });

  for (const model of ["sasrec", "bert4rec", "narm"]) {
    it(`${model}: left padding changes nothing (scores of a history padded to 6 or 9)`, () => {
      const m = createRetriever(model, { numItems: 30, maxLen: 9, hiddenDim: 8, seed: 2 });
      // BERT4Rec drops the oldest position for its mask token: give it one more padding slot.
      const a = m.scoreNext(Int32Array.of(0, 0, 3, 4, 5, 6), 1, 6);
      const b = m.scoreNext(Int32Array.of(0, 0, 0, 0, 0, 3, 4, 5, 6), 1, 9);
      for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 5);
      const c = m.scoreNext(Int32Array.of(0, 0, 3, 4, 5, 9), 1, 6);
      expect([...a]).not.toEqual([...c]);
    });

    // Evaluation scores users in chunks: histories of every length side by side, full windows among them
    // (the test input train + val is one item longer than the validation input: it must be read the same way).
    it(`${model}: a row's scores do not depend on the other rows of the batch (full, empty, any length)`, () => {
      const L = 8;
      const m = createRetriever(model, { numItems: 30, maxLen: L, hiddenDim: 8, seed: 4 });
      const rows = [
        [1, 2, 3, 4, 5, 6, 7, 8], // full window
        [0, 0, 0, 0, 0, 9, 10, 11],
        [0, 0, 0, 0, 0, 0, 0, 0], // empty history
        [0, 12, 13, 14, 15, 16, 17, 18],
        [0, 0, 0, 0, 0, 0, 0, 19],
      ];
      const width = 31;
      const together = m.scoreNext(Int32Array.from(rows.flat()), rows.length, L);
      rows.forEach((row, r) => {
        const alone = m.scoreNext(Int32Array.from(row), 1, L);
        for (let i = 1; i < width; i++) expect(together[r * width + i]).toBeCloseTo(alone[i]!, 5);
      });
      // The last item matters: two histories that differ only in it score differently.
      const last = m.scoreNext(Int32Array.of(1, 2, 3, 4, 5, 6, 7, 20), 1, L);
      expect([...last.subarray(1)]).not.toEqual([...together.subarray(1, width)]);
    });
  }
});

const checkpointPath = (runDir: string) => join(runPaths(runDir).retriever.checkpointDir, CHECKPOINT_FILE);

function outputs(runDir: string) {
  const p = runPaths(runDir);
  const metrics = JSON.parse(readFileSync(p.retriever.metrics, "utf8"));
  delete metrics.selection.trainingSeconds;
  const log = readFileSync(p.retriever.trainLog, "utf8")
    .trim()
    .split("\n")
    .map((l) => {
      const { elapsed: _e, ...rest } = JSON.parse(l);
      return rest;
    });
  return { metrics, log, model: readFileSync(p.retriever.model).toString("base64") };
}

describe("BERT4Rec resumes bit-exactly after SIGKILL (dropout and cloze masks)", () => {
  const killDataset = syntheticDataset({ numUsers: 40, numItems: 30, numClusters: 5, seed: 3 }).dataset;
  const options = { hiddenDim: 8, numBlocks: 1, dropout: 0.2 };
  const killTraining = {
    batchSize: 8,
    maxLen: 10,
    valEvery: 10,
    patience: 100,
    maxIterations: 120,
    evalBatchSize: 20,
    logEvery: 5,
  };
  it("a killed run resumed from its checkpoint ends exactly like an uninterrupted one", async () => {
    const ref = join(dir, "bert-ref");
    await trainRetriever({
      dataset: killDataset,
      model: "bert4rec",
      modelOptions: options,
      training: killTraining,
      runDir: ref,
    });
    const runDir = join(dir, "bert-killed");
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(import.meta.dirname, "baseline-kill-child.ts"),
        runDir,
        "bert4rec",
        JSON.stringify(options),
        JSON.stringify(killTraining),
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (existsSync(checkpointPath(runDir)) && loadCheckpoint(checkpointPath(runDir)).state.iteration >= 30)
        break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 23));
    child.kill("SIGKILL");
    expect(await exited, stderr).toBeNull();
    expect(existsSync(runPaths(runDir).retriever.metrics)).toBe(false);
    await trainRetriever({
      dataset: killDataset,
      model: "bert4rec",
      modelOptions: options,
      training: killTraining,
      runDir,
      resume: true,
    });
    expect(outputs(runDir)).toEqual(outputs(ref));
  }, 120_000);
});
