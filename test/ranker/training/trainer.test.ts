import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { syntheticDataset } from "../../../src/data/index.js";
import { PromptBuilder } from "../../../src/ranker/prompt.js";
import { evaluationInstances, TrainingExamples } from "../../../src/ranker/training/examples.js";
import { loadRankerModel } from "../../../src/ranker/training/model-source.js";
import {
  exampleLossAndBackward,
  linearWarmupLr,
  OFFICIAL_RANKER_TRAINING,
  type RankerTrainConfig,
  RankerTrainer,
} from "../../../src/ranker/training/trainer.js";
import { Verbalizer } from "../../../src/ranker/verbalizer.js";
import { noGrad } from "../../../src/tensor/tape.js";
import { writeTinyLlama } from "../../fixtures/tiny-llama.js";
import { fakeCandidates } from "./fixtures.js";

// Small enough for a unit test: 5 candidates, 3 history items, short synthetic titles.
const NUM_CANDIDATES = 5;
const { dataset } = syntheticDataset(
  { numUsers: 12, numItems: 40, numClusters: 4, minSeqLength: 6, maxSeqLength: 8, seed: 2 },
  { minItemCount: 1 },
);
let dir = "";
let tokenizerGguf = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llamarec-ranker-train-"));
  tokenizerGguf = (await writeTinyLlama(join(dir, "base"), { seed: 3 })).gguf;
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function setup(spec: string, seed = 1) {
  const loaded = loadRankerModel(spec, { tokenizer: tokenizerGguf, seed });
  const prompts = new PromptBuilder(loaded.tokenizer, { maxHistory: 3, maxTitleTokens: 8 });
  const verbalizer = Verbalizer.create(loaded.tokenizer, { count: NUM_CANDIDATES });
  const training = new TrainingExamples(dataset, 5, { numCandidates: NUM_CANDIDATES, maxHistory: 3 });
  const records = fakeCandidates(dataset, "val", { coverage: 1, count: NUM_CANDIDATES, seed: 3 });
  const validation = evaluationInstances(dataset, records, "val", {
    numCandidates: NUM_CANDIDATES,
    maxHistory: 3,
  });
  return { loaded, prompts, verbalizer, training, validation };
}

const tiny = (over: Partial<RankerTrainConfig>): RankerTrainConfig => ({
  ...OFFICIAL_RANKER_TRAINING,
  batchSize: 4,
  microBatchSize: 2,
  warmupSteps: 2,
  valEvery: 5,
  logEvery: 1,
  ...over,
});

describe("linearWarmupLr", () => {
  it("matches HF's linear schedule with warmup (step 0 at lr 0, 0 at the end)", () => {
    expect(linearWarmupLr(1e-4, 0, 100, 1000)).toBe(0);
    expect(linearWarmupLr(1e-4, 50, 100, 1000)).toBeCloseTo(5e-5);
    expect(linearWarmupLr(1e-4, 100, 100, 1000)).toBeCloseTo(1e-4);
    expect(linearWarmupLr(1e-4, 550, 100, 1000)).toBeCloseTo(5e-5);
    expect(linearWarmupLr(1e-4, 1000, 100, 1000)).toBe(0);
  });
});

describe("exampleLossAndBackward", () => {
  it("is the mean cross-entropy of the answer letter and EOS only", () => {
    const { loaded, prompts, verbalizer, training } = setup("scratch:tiny");
    const model = loaded.model;
    const inst = training.instance(0);
    const ex = prompts.buildTraining(
      {
        history: inst.history.map((i) => dataset.titles[i]!),
        candidates: inst.candidates.map((i) => dataset.titles[i]!),
      },
      inst.answerIndex,
      verbalizer.ids,
    );
    expect(ex.ids.at(-2)).toBe(verbalizer.ids[inst.answerIndex]);
    expect(ex.ids.at(-1)).toBe(loaded.tokenizer.eosId);
    expect([...ex.labelMask].reduce((a, b) => a + b, 0)).toBe(2);
    // Reference: full logits, log-softmax at the two rows before the labelled tokens.
    const T = ex.ids.length;
    const logits = noGrad(() => model.logits(model.hidden(Int32Array.from(ex.ids))));
    const V = model.config.vocabSize;
    let ref = 0;
    for (const t of [T - 2, T - 1]) {
      const row = logits.data.subarray((t - 1) * V, t * V);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      ref += (lse - row[ex.ids[t]!]!) / 2;
    }
    model.setBaseTrainable(true);
    const r = exampleLossAndBackward(model, ex, 0.5);
    expect(r.tokens).toBe(2);
    expect(r.loss).toBeCloseTo(ref, 4);
    // Gradient reached the weights (seed 0.5 per token).
    expect(model.outputWeight.grad?.some((g) => g !== 0)).toBe(true);
    // Changing a prompt-only label position changes nothing: no loss outside the mask.
    const noMask = { ...ex, labelMask: new Uint8Array(ex.labelMask.length) };
    noMask.labelMask[T - 1] = 1;
    const eosOnly = exampleLossAndBackward(model, noMask, 1);
    expect(eosOnly.tokens).toBe(1);
    expect(eosOnly.loss).not.toBeCloseTo(r.loss, 3);
  });
});

describe("RankerTrainer", () => {
  it("trains a scratch model end to end: loss goes down, validation, best weights, GGUF model, resume", async () => {
    const { loaded, prompts, verbalizer, training, validation } = setup("scratch:tiny");
    const rankerDir = join(dir, "run-scratch", "ranker");
    const config = tiny({ mode: "full", lr: 3e-3, epochs: 3, maxSteps: 30, valEvery: 10 });
    const trainer = new RankerTrainer({
      rankerDir,
      dataset,
      model: loaded,
      prompts,
      verbalizer,
      training,
      validation,
      config,
    });
    const summary = await trainer.train();
    expect(summary.steps).toBe(30);
    expect(summary.examplesSeen).toBe(120);
    expect(summary.trainableParameters).toBe(summary.totalParameters);
    const log = readFileSync(join(rankerDir, "train-log.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const losses = log.filter((e) => e.type === "train").map((e) => e.loss as number);
    expect(losses).toHaveLength(30);
    const head = (losses[0]! + losses[1]! + losses[2]!) / 3;
    const tail = (losses[27]! + losses[28]! + losses[29]!) / 3;
    // Starts near ln(vocab) (random letter + EOS), learns at least the EOS and the letter set.
    expect(tail).toBeLessThan(head * 0.6);
    const vals = log.filter((e) => e.type === "val");
    expect(vals.map((v) => v.step)).toEqual([10, 20, 30]);
    expect(vals[0].metrics["NDCG@10"]).toBeGreaterThan(0);
    expect(summary.bestStep).not.toBeNull();
    expect(existsSync(join(rankerDir, "model.gguf"))).toBe(true);
    expect(existsSync(join(rankerDir, "best", "trainable.safetensors"))).toBe(true);
    expect(JSON.parse(readFileSync(join(rankerDir, "train-summary.json"), "utf8")).steps).toBe(30);
    expect(existsSync(join(rankerDir, "checkpoint", "latest.json"))).toBe(true);
  }, 120_000);

  it("resumes from the checkpoint to the same weights as an uninterrupted run", async () => {
    const config = tiny({ mode: "full", lr: 3e-3, maxSteps: 10, valEvery: 5 });
    const a = setup("scratch:tiny", 9);
    const dirA = join(dir, "resume-a");
    await new RankerTrainer({
      rankerDir: dirA,
      dataset,
      model: a.loaded,
      prompts: a.prompts,
      verbalizer: a.verbalizer,
      training: a.training,
      validation: a.validation,
      config,
    }).train();

    // Interrupted after 5 steps (maxSteps 5 shortens the lr schedule, so stop via onStep instead).
    const b = setup("scratch:tiny", 9);
    const dirB = join(dir, "resume-b");
    const stop = new Error("interrupted");
    await expect(
      new RankerTrainer({
        rankerDir: dirB,
        dataset,
        model: b.loaded,
        prompts: b.prompts,
        verbalizer: b.verbalizer,
        training: b.training,
        validation: b.validation,
        config,
        onStep: (s) => {
          if (s === 7) throw stop;
        },
      }).train(),
    ).rejects.toBe(stop);
    const c = setup("scratch:tiny", 123); // different init: the checkpoint must overwrite it
    const summary = await new RankerTrainer({
      rankerDir: dirB,
      dataset,
      model: c.loaded,
      prompts: c.prompts,
      verbalizer: c.verbalizer,
      training: c.training,
      validation: c.validation,
      config,
      resume: true,
    }).train();
    expect(summary.steps).toBe(10);
    const wa = a.loaded.model.stateDict();
    const wc = c.loaded.model.stateDict();
    for (const [name, t] of wa) {
      const other = wc.get(name)!.data;
      let maxDiff = 0;
      for (let i = 0; i < t.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(t.data[i]! - other[i]!));
      expect(maxDiff, name).toBeLessThan(1e-5);
    }
    const logA = readFileSync(join(dirA, "train-log.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const logB = readFileSync(join(dirB, "train-log.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(logB.map((e) => [e.type, e.step])).toEqual(logA.map((e) => [e.type, e.step]));
    expect(logB.at(-2).loss).toBeCloseTo(logA.at(-2).loss, 4);
  }, 120_000);

  it("resumes a LoRA run (dropout included) bit-identically to an uninterrupted one", async () => {
    const config = tiny({ mode: "lora", lr: 1e-3, maxSteps: 10, valEvery: 5 });
    expect(config.lora.dropout).toBeGreaterThan(0);
    const run = (s: ReturnType<typeof setup>, rankerDir: string, extra: object = {}) =>
      new RankerTrainer({
        rankerDir,
        dataset,
        model: s.loaded,
        prompts: s.prompts,
        verbalizer: s.verbalizer,
        training: s.training,
        validation: s.validation,
        config,
        ...extra,
      }).train();
    const a = setup(tokenizerGguf);
    const dirA = join(dir, "lora-resume-a");
    await run(a, dirA);

    // Interrupted after step 7: the checkpoint is at step 5, steps 6-7 are redone on resume.
    const dirB = join(dir, "lora-resume-b");
    const stop = new Error("interrupted");
    await expect(
      run(setup(tokenizerGguf), dirB, {
        onStep: (s: number) => {
          if (s === 7) throw stop;
        },
      }),
    ).rejects.toBe(stop);
    const c = setup(tokenizerGguf);
    const summary = await run(c, dirB, { resume: true });
    expect(summary.steps).toBe(10);

    const wa = a.loaded.model.loraParameters();
    const wc = new Map(c.loaded.model.loraParameters());
    expect(wa.length).toBeGreaterThan(0);
    for (const [name, p] of wa) expect(wc.get(name)!.data, name).toEqual(p.data);
    // Everything but wall-clock fields, compared exactly.
    const readLog = (d: string) =>
      readFileSync(join(d, "train-log.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => {
          const { examplesPerSecond: _x, elapsed: _e, seconds: _s, ...rest } = JSON.parse(l);
          return rest;
        });
    const logA = readLog(dirA);
    expect(logA.filter((e) => e.type === "train")).toHaveLength(10);
    expect(readLog(dirB)).toEqual(logA);
  }, 180_000);

  it("LoRA mode trains only the adapters and exports PEFT + GGUF adapters", async () => {
    const { loaded, prompts, verbalizer, training, validation } = setup(tokenizerGguf);
    const before = loaded.model.stateDict();
    const rankerDir = join(dir, "run-lora", "ranker");
    const config = tiny({ mode: "lora", lr: 1e-3, maxSteps: 4, valEvery: 4 });
    const trainer = new RankerTrainer({
      rankerDir,
      dataset,
      model: loaded,
      prompts,
      verbalizer,
      training,
      validation,
      config,
    });
    const summary = await trainer.train();
    // r 8 on q_proj and v_proj of 2 layers: (8·64 + q_out·8) + (8·64 + v_out·8) per layer.
    const c = loaded.model.config;
    const perLayer =
      8 * c.hiddenSize + c.numHeads * c.headDim * 8 + 8 * c.hiddenSize + c.numKvHeads * c.headDim * 8;
    expect(summary.trainableParameters).toBe(perLayer * c.numLayers);
    for (const [name, t] of loaded.model.stateDict()) expect(t.data, name).toEqual(before.get(name)!.data);
    expect(
      loaded.model.loraParameters().some(([n, p]) => n.includes("lora_B") && p.data.some((x) => x !== 0)),
    ).toBe(true);
    expect(existsSync(join(rankerDir, "adapter", "adapter_config.json"))).toBe(true);
    expect(existsSync(join(rankerDir, "adapter", "adapter_model.safetensors"))).toBe(true);
    expect(existsSync(join(rankerDir, "adapter.gguf"))).toBe(true);
  }, 120_000);
});
