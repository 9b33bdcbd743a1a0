/**
 * The `ranker` section of the config file (flags of `llamarec train ranker` and `llamarec rank` override
 * it). Unset training fields take the official LlamaRec values (trainer.ts OFFICIAL_RANKER_TRAINING).
 */
import { z } from "zod";
import { defineConfigSection } from "../../config/sections.js";
import { LORA_TARGETS } from "../../llm/lora/config.js";

const positiveInt = z.number().int().positive();

export const rankerSection = defineConfigSection(
  "ranker",
  z.strictObject({
    /** .gguf file, Hugging Face folder or scratch:<size>. */
    model: z.string().min(1).optional(),
    /** Vocabulary source for scratch models (or to override the model's tokenizer). */
    tokenizer: z.string().min(1).optional(),
    mode: z.enum(["lora", "full"]).optional(),
    loraR: positiveInt.optional(),
    loraAlpha: z.number().positive().optional(),
    loraDropout: z.number().min(0).lt(1).optional(),
    loraTargets: z.array(z.enum(LORA_TARGETS)).min(1).optional(),
    lr: z.number().positive().optional(),
    warmupSteps: z.number().int().min(0).optional(),
    weightDecay: z.number().min(0).optional(),
    maxGradNorm: z.number().positive().optional(),
    batchSize: positiveInt.optional(),
    microBatchSize: positiveInt.optional(),
    epochs: positiveInt.optional(),
    steps: positiveInt.optional(),
    valEvery: positiveInt.optional(),
    valUsers: positiveInt.optional(),
    patience: positiveInt.optional(),
    logEvery: positiveInt.optional(),
    seed: z.number().int().optional(),
    numCandidates: z.number().int().min(2).max(26).optional(),
    maxHistory: positiveInt.optional(),
    maxTitleTokens: positiveInt.optional(),
    maxPromptTokens: positiveInt.optional(),
    letterMode: z.enum(["answer-position", "isolated"]).optional(),
  }),
);
