/**
 * The `retriever` section of the config file (flags of `llamarec train retriever` override it).
 * Every training field is optional: unset ones take the official defaults for the dataset
 * (train-config.ts), so a config file only states what it changes.
 */
import { z } from "zod";
import { defineConfigSection } from "../config/sections.js";
import { type ModelOptionField, modelOptionFields } from "./registry.js";
import type { TrainerConfig } from "./train-config.js";

const positiveInt = z.number().int().positive();

export const retrieverSection = defineConfigSection(
  "retriever",
  z.strictObject({
    model: z.string().min(1).default("lru"),
    /** Run folder name under runsDir (default: <model>-<dataset>-<time>), or a path. */
    run: z.string().min(1).optional(),
    runsDir: z.string().min(1).default("runs"),
    /** Model dropout (LRU: embedding and block dropout; official 0.2 — paper tunes it); = options.dropout. */
    dropout: z.number().min(0).lt(1).optional(),
    /**
     * The model's own options (hiddenDim, numHeads, maskProb, ...), validated by the model's schema when
     * training starts (src/retrievers/registry.ts); each also has a `llamarec train retriever` flag.
     */
    options: z.record(z.string(), z.unknown()).default({}),
    batchSize: positiveInt.optional(),
    maxLen: positiveInt.optional(),
    slidingWindow: z.number().positive().optional(),
    lr: z.number().positive().optional(),
    weightDecay: z.number().min(0).optional(),
    adamEps: z.number().positive().optional(),
    maxGradNorm: z.number().min(0).optional(),
    valEvery: positiveInt.optional(),
    patience: positiveInt.optional(),
    maxIterations: positiveInt.optional(),
    maxEpochs: positiveInt.optional(),
    seed: z.number().int().optional(),
    /** History exclusion of the validation during training (default: eval.exclude; official: none). */
    valExclude: z.enum(["full", "input", "none"]).optional(),
    bestMetric: z
      .string()
      .regex(/^(Recall|MRR|NDCG)@\d+$/)
      .optional(),
    evalBatchSize: positiveInt.optional(),
    logEvery: positiveInt.optional(),
  }),
);

export type RetrieverSectionConfig = z.output<typeof retrieverSection.schema>;

const TRAINING_FIELDS = [
  "batchSize",
  "maxLen",
  "slidingWindow",
  "lr",
  "weightDecay",
  "adamEps",
  "maxGradNorm",
  "valEvery",
  "patience",
  "maxIterations",
  "maxEpochs",
  "seed",
  "bestMetric",
  "valExclude",
  "evalBatchSize",
  "logEvery",
] as const satisfies readonly (keyof RetrieverSectionConfig & keyof TrainerConfig)[];

/** The section's training fields that are set, as overrides of the trainer's defaults (train-config.ts). */
export function trainingOverrides(r: RetrieverSectionConfig): Partial<TrainerConfig> {
  const out: Partial<Record<(typeof TRAINING_FIELDS)[number], unknown>> = {};
  for (const f of TRAINING_FIELDS) if (r[f] !== undefined) out[f] = r[f];
  return out as Partial<TrainerConfig>;
}

/** A model option's CLI flag: `--mask-prob <value>` → retriever.options.maskProb. */
export interface ModelOptionFlag {
  /** commander's attribute name (camelCase), also the option key. */
  key: string;
  flag: string;
  description: string;
  kind: ModelOptionField["kind"];
  configPath: string;
}

/** Flags for every model option except `dropout` (a section field of its own). */
export function modelOptionFlags(): ModelOptionFlag[] {
  return modelOptionFields()
    .filter((f) => f.key !== "dropout")
    .map((f) => ({
      key: f.key,
      flag: `--${f.key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}${f.kind === "boolean" ? "" : " <value>"}`,
      description: `${f.description} [${f.models.join(", ")}]`,
      kind: f.kind,
      configPath: `retriever.options.${f.key}`,
    }));
}
