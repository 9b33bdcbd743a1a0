/**
 * The `retriever` section of the config file (flags of `llamarec train retriever` override it).
 * Every training field is optional: unset ones take the official defaults for the dataset
 * (train-config.ts), so a config file only states what it changes.
 */
import { z } from "zod";
import { defineConfigSection } from "../config/sections.js";

const positiveInt = z.number().int().positive();

export const retrieverSection = defineConfigSection(
  "retriever",
  z.strictObject({
    model: z.string().min(1).default("lru"),
    /** Run folder name under runsDir (default: <model>-<dataset>-<time>), or a path. */
    run: z.string().min(1).optional(),
    runsDir: z.string().min(1).default("runs"),
    /** Model dropout (LRU: embedding and block dropout; official 0.2 — paper tunes it). */
    dropout: z.number().min(0).lt(1).optional(),
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
    bestMetric: z
      .string()
      .regex(/^(Recall|MRR|NDCG)@\d+$/)
      .optional(),
    evalBatchSize: positiveInt.optional(),
    logEvery: positiveInt.optional(),
  }),
);

export type RetrieverSectionConfig = z.output<typeof retrieverSection.schema>;
