/**
 * What one pipeline run does, as plain data: the dataset, the retriever and its training, the ranker and
 * its training and prompts, the ranking backend and the report. Profiles give complete settings; a config
 * file and flags change fields of them (the CLI merges; the library takes the result).
 */
import type { DatasetSpec, LoadOptions } from "../data/index.js";
import { bundledTinyGguf } from "../llm/bundled.js";
import type { BackendKind } from "../ranker/backends/open.js";
import type { RankerPromptSettings } from "../ranker/run-config.js";
import type { RankerTrainConfig } from "../ranker/training/trainer.js";
import type { TrainerConfig } from "../retrievers/train-config.js";
import { InputError } from "../util/errors.js";

export interface PipelineSettings {
  /** The profile the settings started from (recorded; does not affect stage hashes by itself). */
  profile: string;
  data: { spec: DatasetSpec; load: LoadOptions };
  retriever: {
    model: string;
    /** Model options (e.g. dropout); the trainer fills in numItems and seed. */
    modelOptions: Record<string, unknown>;
    /** Unset fields take the official defaults for the dataset (src/retrievers/train-config.ts). */
    training: Partial<TrainerConfig>;
  };
  ranker: {
    /** .gguf file, HF folder or scratch:<size>. */
    model: string;
    /** Vocabulary source for scratch models (or to override the model's tokenizer). */
    tokenizer?: string;
    /** Unset fields take the official LlamaRec values (src/ranker/training/trainer.ts). */
    training: Partial<RankerTrainConfig>;
    prompt: Partial<RankerPromptSettings>;
  };
  rank: {
    backend: BackendKind;
    /** llama.cpp threads. */
    threads?: number;
    /** Candidate orders averaged per user (position-bias control); default 1. */
    orders?: number;
  };
  report: {
    /** Published numbers to compare with: a file, null for none, absent for the bundled paper cells. */
    reference?: string | null;
    title?: string;
  };
}

export const PROFILES = ["quick", "paper"] as const;
export type ProfileName = (typeof PROFILES)[number];

export function isProfileName(name: string): name is ProfileName {
  return (PROFILES as readonly string[]).includes(name);
}

/**
 * quick: the README's main job on the bundled ml-latest-small in about ten minutes on two cores. LRURec
 * with the official optimiser but a bounded schedule (shorter sequences, a few hundred iterations), its
 * top-20 candidates, and a ranker trained from scratch (scratch:tiny with the bundled Llama 2 tokenizer,
 * full training) ranked on our engine. Its numbers show the pipeline works, not the paper's results.
 */
export function quickProfile(): PipelineSettings {
  return {
    profile: "quick",
    data: { spec: { name: "ml-latest-small" }, load: {} },
    retriever: {
      model: "lru",
      modelOptions: {},
      training: { maxLen: 50, batchSize: 32, maxIterations: 400, valEvery: 100, patience: 20, logEvery: 10 },
    },
    ranker: {
      model: "scratch:tiny",
      tokenizer: bundledTinyGguf(),
      training: {
        mode: "full",
        lr: 2e-3,
        warmupSteps: 10,
        batchSize: 4,
        microBatchSize: 4,
        maxSteps: 60,
        valEvery: 20,
        valUsers: 32,
        patience: 20,
        logEvery: 5,
      },
      prompt: {},
    },
    rank: { backend: "engine" },
    report: {},
  };
}

/**
 * paper: the paper's settings. The retriever takes the official LlamaRec schedule for the dataset (early
 * stopping after 20 validations every 500 iterations, up to 500 epochs); the ranker the paper's LoRA
 * fine-tuning (r 8, alpha 32, dropout 0.05 on q/v, lr 1e-4, batch 16, 1 epoch, 100 warmup steps) of the
 * user's model (ranker.model: a Llama 2 GGUF or HF folder), ranked with llama.cpp for GGUF models.
 */
export function paperProfile(rankerModel?: string): PipelineSettings {
  return {
    profile: "paper",
    data: { spec: { name: "ml-latest-small" }, load: {} },
    retriever: { model: "lru", modelOptions: {}, training: {} },
    ranker: { model: rankerModel ?? "", training: {}, prompt: {} },
    rank: { backend: rankerModel?.endsWith(".gguf") ? "llamacpp" : "engine" },
    report: {},
  };
}

export function profileSettings(name: string): PipelineSettings {
  if (name === "quick") return quickProfile();
  if (name === "paper") return paperProfile();
  throw new InputError(`unknown profile "${name}"; use ${PROFILES.join(" or ")}`);
}

/** Settings a run cannot start with. */
export function validateSettings(s: PipelineSettings): void {
  if (!s.ranker.model)
    throw new InputError(
      `profile ${s.profile}: the ranker needs a model (ranker.model in the config file, or --ranker-model): a Llama 2 GGUF file or HF folder`,
    );
  if (s.ranker.model.startsWith("scratch:") && !s.ranker.tokenizer)
    throw new InputError(`ranker model ${s.ranker.model} needs a tokenizer (ranker.tokenizer)`);
}
