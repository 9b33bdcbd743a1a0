/**
 * A run's ranker as recorded in ranker/config.json, shared by training it and ranking with it: the prompt
 * settings, the candidates it reads, the prompt builder and verbalizer it uses, and which model file and
 * adapter a backend loads.
 */
import { existsSync, readFileSync } from "node:fs";
import type { Dataset } from "../data/dataset.js";
import { type CandidateRecord, readCandidates } from "../retrievers/candidates.js";
import { checkDatasetMatches, readRunConfig, runPaths } from "../run/index.js";
import { InputError } from "../util/errors.js";
import type { BackendKind } from "./backends/open.js";
import { PAPER_PROMPT, PromptBuilder, type PromptConfig } from "./prompt.js";
import { DEFAULT_NUM_CANDIDATES } from "./training/examples.js";
import { isScratchSpec, type RankerModel } from "./training/model-source.js";
import type { RankerTrainConfig } from "./training/trainer.js";
import { type LetterIdMode, Verbalizer } from "./verbalizer.js";

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
  /** Absolute path of the base model (or scratch:<size>); older runs may hold a path relative to where they ran. */
  model: string;
  /** modelHash() of the base model when it was trained (absent for scratch models and older runs). */
  modelHash?: string;
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

export function promptTools(model: Pick<RankerModel, "tokenizer">, p: RankerPromptSettings) {
  const config: Partial<PromptConfig> = {
    maxHistory: p.maxHistory,
    maxTitleTokens: p.maxTitleTokens,
    maxPromptTokens: p.maxPromptTokens,
  };
  const prompts = new PromptBuilder(model.tokenizer, config);
  const verbalizer = Verbalizer.forPrompt(prompts, { count: p.numCandidates, mode: p.letterMode });
  return { prompts, verbalizer };
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
    // Ranking with the bare base model instead would give results that look like the ranker's.
    if (!existsSync(candidate))
      throw new InputError(
        `${runDir}: the trained LoRA adapter ${candidate} is missing; train the ranker again (train ranker --force), or pass --adapter none to rank with the base model`,
      );
    resolvedAdapter = candidate;
  }
  return { model: resolvedModel, adapter: resolvedAdapter, tokenizer: cfg?.tokenizer ?? null, prompt };
}

/**
 * Refuses a base model that changed since the run's ranker was trained on it (the adapter would be applied
 * to other weights). Checks only the run's own model (not one given with --model), when it recorded a hash.
 */
export async function verifyRankerModel(runDir: string, model: string): Promise<void> {
  const cfg = readRankerRunConfig(runDir);
  if (!cfg?.modelHash || cfg.model !== model || !existsSync(model)) return;
  const { modelHash } = await import("./model-hash.js");
  const now = await modelHash(model);
  if (now !== cfg.modelHash)
    throw new InputError(
      `${model} changed since the ranker in ${runDir} was trained on it (hash ${now.slice(0, 19)}…, recorded ${cfg.modelHash.slice(0, 19)}…); restore that file or train again`,
    );
}
