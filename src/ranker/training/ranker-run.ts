/**
 * Training a run's ranker, glued from the pieces: read the retriever's candidates, build the model,
 * prompts and verbalizer, train (trainer.ts), then rank validation and test with the trained model
 * (rank.ts). File layout: src/run/paths.ts (ranker/).
 */
import { existsSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import type { Dataset } from "../../data/dataset.js";
import { readRunConfig, runPaths } from "../../run/index.js";
import { writeJsonAtomic } from "../../util/atomic.js";
import { InputError, rejectUnknownKeys } from "../../util/errors.js";
import { type Events, NO_EVENTS } from "../../util/events.js";
import { openRankerBackend } from "../backends/open.js";
import { modelHash } from "../model-hash.js";
import { type RankResult, rankCandidates, writeRankOutputs } from "../rank.js";
import {
  DEFAULT_PROMPT_SETTINGS,
  promptTools,
  type RankerPromptSettings,
  type RankerRunConfig,
  readRankerRunConfig,
  runCandidates,
} from "../run-config.js";
import { evaluationInstances, TrainingExamples } from "./examples.js";
import { type ExportCounts, exportTrainingSets } from "./export.js";
import { isScratchSpec, loadRankerModel } from "./model-source.js";
import {
  OFFICIAL_RANKER_TRAINING,
  type RankerTrainConfig,
  RankerTrainer,
  type RankerTrainSummary,
} from "./trainer.js";

export interface TrainRankerRunOptions {
  runDir: string;
  dataset: Dataset;
  /** .gguf file, HF folder or scratch:<size>. */
  model: string;
  tokenizer?: string;
  training?: Partial<RankerTrainConfig>;
  prompt?: Partial<RankerPromptSettings>;
  resume?: boolean;
  /** Replace a ranker the run already has (its weights, checkpoints and rankings are deleted first). */
  force?: boolean;
  /** Also write {prompt, completion} JSONL of the training/validation/test sets to this folder. */
  exportJsonl?: string;
  /** Only export the JSONL sets, no training. */
  exportOnly?: boolean;
  /** Rank validation and test with the trained model afterwards (default true). */
  rank?: boolean;
  /** Where logs, progress and metrics are reported. */
  events?: Events;
}

export interface TrainRankerRunResult {
  rankerDir: string;
  summary: RankerTrainSummary | null;
  exported: ExportCounts | null;
  rank: RankResult | null;
}

export async function trainRankerRun(o: TrainRankerRunOptions): Promise<TrainRankerRunResult> {
  const events = o.events ?? NO_EVENTS;
  const log = (line: string) => events.log("info", line);
  const rankerDir = runPaths(o.runDir).ranker.dir;
  const records = await runCandidates(o.runDir, o.dataset);
  if (!o.exportOnly && !o.resume) {
    // Like the retriever: never train over another ranker silently, and never leave files (adapter,
    // ranked.jsonl, metrics.json, checkpoints) that describe other weights.
    if (readRankerRunConfig(o.runDir) && !o.force)
      throw new InputError(
        `${o.runDir} already has a trained ranker (${runPaths(o.runDir).ranker.config}); use --force to replace it or --resume to continue it`,
      );
    if (existsSync(rankerDir)) {
      log(`ranker: replacing ${rankerDir}`);
      rmSync(rankerDir, { recursive: true, force: true });
    }
  }
  // Record where the base model is, not how it was typed: `rank` may run from another folder.
  const modelPath = isScratchSpec(o.model) ? o.model : resolve(o.model);
  const tokenizerPath = o.tokenizer ? resolve(o.tokenizer) : null;
  rejectUnknownKeys(o.prompt, DEFAULT_PROMPT_SETTINGS, "ranker prompt");
  rejectUnknownKeys(o.training, OFFICIAL_RANKER_TRAINING, "ranker training");
  const prompt = { ...DEFAULT_PROMPT_SETTINGS, ...o.prompt };
  const training: RankerTrainConfig = {
    ...OFFICIAL_RANKER_TRAINING,
    mode: isScratchSpec(o.model) ? "full" : "lora",
    ...o.training,
  };
  const loaded = loadRankerModel(modelPath, {
    ...(tokenizerPath ? { tokenizer: tokenizerPath } : {}),
    seed: training.seed,
  });
  const { prompts, verbalizer } = promptTools(loaded, prompt);
  const shape = { numCandidates: prompt.numCandidates, maxHistory: prompt.maxHistory };
  const examples = new TrainingExamples(o.dataset, training.seed, shape);
  const validation = evaluationInstances(o.dataset, records, "val", shape);
  log(
    `ranker: ${examples.length} training examples, ${validation.length} validation users with the label in the top-${prompt.numCandidates}`,
  );
  let exported: ExportCounts | null = null;
  if (o.exportJsonl) {
    exported = await exportTrainingSets(o.exportJsonl, {
      dataset: o.dataset,
      prompts,
      training: examples,
      validation,
      test: evaluationInstances(o.dataset, records, "test", shape),
    });
    log(
      `exported ${exported.train} training, ${exported.val} validation, ${exported.test} test lines to ${o.exportJsonl}`,
    );
  }
  if (o.exportOnly) return { rankerDir, summary: null, exported, rank: null };

  const config: RankerRunConfig = {
    version: 1,
    createdAt: new Date().toISOString(),
    model: modelPath,
    ...(isScratchSpec(modelPath) ? {} : { modelHash: await modelHash(modelPath) }),
    tokenizer: tokenizerPath,
    prompt,
    training,
    datasetFingerprint: (await readRunConfig(o.runDir)).dataset.fingerprint,
  };
  const previous = readRankerRunConfig(o.runDir);
  if (o.resume && previous && JSON.stringify(previous.training) !== JSON.stringify(training)) {
    throw new InputError(
      `cannot resume ${rankerDir}: its training settings differ from these (${runPaths(o.runDir).ranker.config})`,
    );
  }
  await writeJsonAtomic(runPaths(o.runDir).ranker.config, o.resume && previous ? previous : config);
  const trainer = new RankerTrainer({
    rankerDir,
    dataset: o.dataset,
    model: loaded,
    prompts,
    verbalizer,
    training: examples,
    validation,
    config: training,
    resume: o.resume === true,
    events,
  });
  log(
    `ranker: ${training.mode === "lora" ? "LoRA" : "full"} training of ${trainer.trainableParameters} parameters, ${trainer.totalSteps} steps`,
  );
  const summary = await trainer.train();
  let rank: RankResult | null = null;
  if (o.rank ?? true) {
    const backend = await openRankerBackend("engine", { loaded: loaded.model });
    rank = await rankCandidates({
      dataset: o.dataset,
      records,
      backend,
      prompts,
      verbalizer,
      numCandidates: prompt.numCandidates,
      maxHistory: prompt.maxHistory,
    });
    const written = await writeRankOutputs(rankerDir, rank, {
      backend: backend.name,
      model: o.model,
      orders: 1,
    });
    events.artifact("ranker.ranked", written.ranked);
    events.artifact("ranker.metrics", written.metrics);
  }
  return { rankerDir, summary, exported, rank };
}
