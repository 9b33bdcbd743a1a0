/**
 * The ranker stage of a run folder, glued from the pieces: read the retriever's candidates, build the
 * model, prompts and verbalizer, train (trainer.ts), then rank validation and test (rank.ts).
 *
 *   runs/<name>/ranker/config.json     model, tokenizer, prompt and training settings of the ranker
 *   runs/<name>/ranker/train-log.jsonl  loss / lr / examples/s every logEvery steps, validation metrics
 *   runs/<name>/ranker/adapter/         PEFT LoRA folder (adapter_config.json + adapter_model.safetensors)
 *   runs/<name>/ranker/adapter.gguf     the same adapter for llama.cpp
 *   runs/<name>/ranker/model.gguf       full-trained (scratch) model with its tokenizer
 *   runs/<name>/ranker/ranked.jsonl     candidates reordered by the ranker, label rank before/after
 *   runs/<name>/ranker/metrics.json     subset / overall metrics for ranker and retriever order
 *   runs/<name>/ranker/export/          {prompt, completion} JSONL for GPU trainers (optional)
 */
import { existsSync, readFileSync } from "node:fs";
import type { Dataset } from "../../data/dataset.js";
import { attachLoraFromPath } from "../../llm/lora/load.js";
import { type CandidateRecord, readCandidates } from "../../retrievers/candidates.js";
import { checkDatasetMatches, rankerPaths, readRunConfig, runPaths } from "../../run/index.js";
import { writeJsonAtomic } from "../../util/atomic.js";
import { InputError } from "../../util/errors.js";
import type { RankerBackend } from "../backend.js";
import { EngineBackend } from "../backends/engine.js";
import { RemoteBackend, type RemoteBackendOptions } from "../backends/remote.js";
import { PAPER_PROMPT, PromptBuilder, type PromptConfig } from "../prompt.js";
import { type RankResult, rankCandidates, writeRankOutputs } from "../rank.js";
import { type LetterIdMode, Verbalizer } from "../verbalizer.js";
import { DEFAULT_NUM_CANDIDATES, evaluationInstances, TrainingExamples } from "./examples.js";
import { type ExportCounts, exportTrainingSets } from "./export.js";
import { isScratchSpec, loadRankerModel, type RankerModel, tokenizerFrom } from "./model-source.js";
import {
  OFFICIAL_RANKER_TRAINING,
  type RankerTrainConfig,
  RankerTrainer,
  type RankerTrainSummary,
} from "./trainer.js";

export interface RankerPromptSettings {
  numCandidates: number;
  maxHistory: number;
  maxTitleTokens: number;
  maxPromptTokens: number;
  letterMode: LetterIdMode;
}

export const DEFAULT_PROMPT_SETTINGS: Readonly<RankerPromptSettings> = {
  numCandidates: DEFAULT_NUM_CANDIDATES,
  maxHistory: PAPER_PROMPT.maxHistory,
  maxTitleTokens: PAPER_PROMPT.maxTitleTokens,
  maxPromptTokens: PAPER_PROMPT.maxPromptTokens,
  letterMode: "answer-position",
};

/** ranker/config.json: enough for `llamarec rank` to rebuild prompts and find the trained weights. */
export interface RankerRunConfig {
  version: 1;
  createdAt: string;
  model: string;
  tokenizer: string | null;
  prompt: RankerPromptSettings;
  training: RankerTrainConfig;
  datasetFingerprint: string;
}

export function readRankerRunConfig(runDir: string): RankerRunConfig | null {
  const path = runPaths(runDir).ranker.config;
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as RankerRunConfig;
  } catch (err) {
    throw new InputError(`${path}: not valid JSON (${(err as Error).message})`);
  }
}

/** The run's candidates, after checking the run was made on this dataset. */
export async function runCandidates(runDir: string, dataset: Dataset): Promise<CandidateRecord[]> {
  const run = await readRunConfig(runDir);
  checkDatasetMatches(run.dataset, dataset, runDir);
  const path = runPaths(runDir).retriever.candidates;
  if (!existsSync(path))
    throw new InputError(`${runDir} has no retriever candidates (${path}); train the retriever first`);
  return readCandidates(path);
}

function promptTools(model: Pick<RankerModel, "tokenizer">, p: RankerPromptSettings) {
  const config: Partial<PromptConfig> = {
    maxHistory: p.maxHistory,
    maxTitleTokens: p.maxTitleTokens,
    maxPromptTokens: p.maxPromptTokens,
  };
  const prompts = new PromptBuilder(model.tokenizer, config);
  const verbalizer = Verbalizer.forPrompt(prompts, { count: p.numCandidates, mode: p.letterMode });
  return { prompts, verbalizer };
}

export interface TrainRankerRunOptions {
  runDir: string;
  dataset: Dataset;
  /** .gguf file, HF folder or scratch:<size>. */
  model: string;
  tokenizer?: string;
  training?: Partial<RankerTrainConfig>;
  prompt?: Partial<RankerPromptSettings>;
  resume?: boolean;
  /** Also write {prompt, completion} JSONL of the training/validation/test sets to this folder. */
  exportJsonl?: string;
  /** Only export the JSONL sets, no training. */
  exportOnly?: boolean;
  /** Rank validation and test with the trained model afterwards (default true). */
  rank?: boolean;
  log?: (line: string) => void;
}

export interface TrainRankerRunResult {
  rankerDir: string;
  summary: RankerTrainSummary | null;
  exported: ExportCounts | null;
  rank: RankResult | null;
}

export async function trainRankerRun(o: TrainRankerRunOptions): Promise<TrainRankerRunResult> {
  const log = o.log ?? (() => {});
  const rankerDir = runPaths(o.runDir).ranker.dir;
  const records = await runCandidates(o.runDir, o.dataset);
  const prompt = { ...DEFAULT_PROMPT_SETTINGS, ...o.prompt };
  const training: RankerTrainConfig = {
    ...OFFICIAL_RANKER_TRAINING,
    mode: isScratchSpec(o.model) ? "full" : "lora",
    ...o.training,
  };
  const loaded = loadRankerModel(o.model, {
    ...(o.tokenizer ? { tokenizer: o.tokenizer } : {}),
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
    model: o.model,
    tokenizer: o.tokenizer ?? null,
    prompt,
    training,
    datasetFingerprint: (await readRunConfig(o.runDir)).dataset.fingerprint,
  };
  const previous = readRankerRunConfig(o.runDir);
  if (o.resume && previous && JSON.stringify(previous.training) !== JSON.stringify(training)) {
    throw new InputError(
      `cannot resume ${rankerDir}: its training settings differ from these (${rankerPaths(rankerDir).config})`,
    );
  }
  await writeJsonAtomic(rankerPaths(rankerDir).config, o.resume && previous ? previous : config);
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
    log,
  });
  log(
    `ranker: ${training.mode === "lora" ? "LoRA" : "full"} training of ${trainer.trainableParameters} parameters, ${trainer.totalSteps} steps`,
  );
  const summary = await trainer.train();
  let rank: RankResult | null = null;
  if (o.rank ?? true) {
    const backend = new EngineBackend(loaded.model);
    rank = await rankCandidates({
      dataset: o.dataset,
      records,
      backend,
      prompts,
      verbalizer,
      numCandidates: prompt.numCandidates,
      maxHistory: prompt.maxHistory,
    });
    await writeRankOutputs(rankerDir, rank, { backend: backend.name, model: o.model, orders: 1 });
  }
  return { rankerDir, summary, exported, rank };
}

export type BackendKind = "engine" | "llamacpp" | "remote";

export interface RankRunOptions {
  runDir: string;
  dataset: Dataset;
  backend: BackendKind;
  /** Default: from ranker/config.json (the base model, or ranker/model.gguf of a full-trained run). */
  model?: string;
  /** LoRA adapter (PEFT folder or .gguf); default: the run's trained adapter if any. "none" disables. */
  adapter?: string;
  tokenizer?: string;
  remote?: Omit<RemoteBackendOptions, "decode">;
  orders?: number;
  seed?: number;
  allUsers?: boolean;
  splits?: readonly ("val" | "test")[];
  prompt?: Partial<RankerPromptSettings>;
  /** llama.cpp threads (default 2). */
  threads?: number;
  log?: (line: string) => void;
  onProgress?: (done: number, total: number) => void;
}

/** Which model file and adapter a run's trained ranker uses for a backend. */
export function resolveRankerWeights(
  runDir: string,
  backend: BackendKind,
  model?: string,
  adapter?: string,
): { model: string; adapter: string | null; tokenizer: string | null; prompt: RankerPromptSettings } {
  const cfg = readRankerRunConfig(runDir);
  const paths = runPaths(runDir).ranker;
  const prompt = cfg?.prompt ?? { ...DEFAULT_PROMPT_SETTINGS };
  let resolvedModel = model;
  if (!resolvedModel) {
    if (!cfg) throw new InputError(`${runDir} has no trained ranker (ranker/config.json); pass --model`);
    resolvedModel = cfg.training.mode === "full" ? paths.modelGguf : cfg.model;
    if (isScratchSpec(resolvedModel))
      throw new InputError(
        `${runDir}: the scratch model was not saved as GGUF (${paths.modelGguf}); pass --model`,
      );
  }
  let resolvedAdapter: string | null = null;
  if (adapter && adapter !== "none") resolvedAdapter = adapter;
  else if (!adapter && !model && cfg?.training.mode === "lora") {
    const candidate = backend === "llamacpp" ? paths.adapterGguf : paths.adapterDir;
    if (existsSync(candidate)) resolvedAdapter = candidate;
  }
  return { model: resolvedModel, adapter: resolvedAdapter, tokenizer: cfg?.tokenizer ?? null, prompt };
}

export async function rankRun(o: RankRunOptions): Promise<RankResult> {
  const log = o.log ?? (() => {});
  const records = await runCandidates(o.runDir, o.dataset);
  const w = resolveRankerWeights(o.runDir, o.backend, o.model, o.adapter);
  const prompt = { ...w.prompt, ...o.prompt };
  const tokenizerPath = o.tokenizer ?? w.tokenizer ?? undefined;
  let backend: RankerBackend;
  let tools: ReturnType<typeof promptTools>;
  if (o.backend === "engine") {
    const loaded = loadRankerModel(w.model, tokenizerPath ? { tokenizer: tokenizerPath } : {});
    if (w.adapter) attachLoraFromPath(loaded.model, w.adapter);
    tools = promptTools(loaded, prompt);
    backend = new EngineBackend(loaded.model);
  } else {
    // Prompts need only the tokenizer: read it from the model file (or --tokenizer), not the weights.
    const { tokenizer } = tokenizerFrom(tokenizerPath ?? w.model);
    tools = promptTools({ tokenizer }, prompt);
    if (o.backend === "llamacpp") {
      const { LlamaCppBackend } = await import("../backends/llamacpp.js");
      backend = await LlamaCppBackend.open({
        modelPath: w.model,
        ...(w.adapter ? { loraPath: w.adapter } : {}),
        threads: o.threads ?? 2,
      });
    } else {
      if (!o.remote?.url) throw new InputError("--backend remote needs --url");
      backend = new RemoteBackend({ ...o.remote, decode: (ids) => tokenizer.decode(ids) });
    }
  }
  log(`ranking with ${backend.name}: model ${w.model}${w.adapter ? `, adapter ${w.adapter}` : ""}`);
  try {
    const result = await rankCandidates({
      dataset: o.dataset,
      records,
      backend,
      ...tools,
      numCandidates: prompt.numCandidates,
      maxHistory: prompt.maxHistory,
      ...(o.orders === undefined ? {} : { orders: o.orders }),
      ...(o.seed === undefined ? {} : { seed: o.seed }),
      ...(o.allUsers ? { allUsers: true } : {}),
      ...(o.splits ? { splits: o.splits } : {}),
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    });
    await writeRankOutputs(runPaths(o.runDir).ranker.dir, result, {
      backend: backend.name,
      model: w.model,
      adapter: w.adapter,
      orders: o.orders ?? 1,
    });
    return result;
  } finally {
    await backend.close();
  }
}
