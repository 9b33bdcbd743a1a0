/**
 * What a report needs from one run folder, read from the files the stages wrote (docs/formats.md):
 * config.json, retriever/{metrics.json, train-log.jsonl}, ranker/{config.json, train-summary.json,
 * metrics.json, train-log.jsonl}. A run may have only a retriever (a baseline) or both stages. Files are
 * validated as far as the report uses them; a bad field is an InputError naming the file and the field.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { z } from "zod";
import type { Metrics } from "../eval/index.js";
import {
  type DatasetRef,
  type RunConfig,
  readJsonFile,
  readRunConfig,
  runPaths,
  type StageRecord,
} from "../run/index.js";
import { InputError } from "../util/errors.js";

export interface CurvePoint {
  /** Optimizer step (the retriever's "iteration", the ranker's "step"). */
  x: number;
  y: number;
}

export interface TrainingCurve {
  /** Mean training loss per logged interval. */
  loss: CurvePoint[];
  /** Validation value of `validationMetric` at each validation. */
  validation: CurvePoint[];
  validationMetric: string;
}

export interface SplitMetrics {
  users: number;
  metrics: Metrics;
}

export interface RetrieverData {
  /** Registry id of the model: lru, pop, sasrec, bert4rec, narm. */
  model: string;
  val: SplitMetrics | null;
  test: SplitMetrics | null;
  /** metrics.json "selection": best iteration, iterations, stoppedBy, trainingSeconds. */
  selection: Record<string, unknown> | null;
  /** The trainer's epoch limit (config.json retriever.training.maxEpochs), when recorded. */
  maxEpochs: number | null;
  /** metrics.json "candidates": count, and per split users / covered / share. */
  candidates: {
    count: number;
    val?: { users: number; covered: number; share: number };
    test?: { users: number; covered: number; share: number };
  } | null;
  curve: TrainingCurve | null;
}

export interface RankerSplit {
  numCandidates: number;
  users: number;
  subsetUsers: number;
  retriever: Metrics;
  retrieverOnSubset: Metrics;
  rankerOnSubset: Metrics;
  overall: Metrics;
}

export interface RankerData {
  /** Base model as given: a .gguf path, an HF folder, or scratch:<size>. */
  model: string;
  /** Training mode: "lora" or "full" (null when the run has no ranker config). */
  mode: string | null;
  /** Backend that ranked (engine, llamacpp, remote). */
  backend: string | null;
  /** Adapter used for ranking, when recorded. */
  adapter: string | null;
  /** From train-summary.json. */
  training: {
    steps: number;
    examplesSeen: number;
    seconds: number;
    stoppedEarly: boolean;
    /** Step of the best validation (the weights kept), when recorded. */
    bestStep?: number | null;
    trainableParameters: number;
    totalParameters: number;
  } | null;
  val: RankerSplit | null;
  test: RankerSplit | null;
  curve: TrainingCurve | null;
}

export interface RunData {
  /** Folder name, used as the run's column header. */
  name: string;
  dir: string;
  dataset: DatasetRef;
  retriever: RetrieverData | null;
  ranker: RankerData | null;
  /** Pipeline stage records (status, wall time, peak memory), when the run was made by `llamarec run`. */
  stages: Record<string, StageRecord>;
}

const metricsSchema = z
  .record(z.string(), z.number().nullable())
  .transform((m) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v ?? Number.NaN])));

const splitSchema = z.object({ users: z.number(), metrics: metricsSchema });
const coverageSchema = z.object({ users: z.number(), covered: z.number(), share: z.number() });

const retrieverMetricsSchema = z.object({
  model: z.string(),
  selection: z.record(z.string(), z.unknown()).optional(),
  val: splitSchema.optional(),
  test: splitSchema.optional(),
  candidates: z
    .object({ count: z.number(), val: coverageSchema.optional(), test: coverageSchema.optional() })
    .optional(),
});

const rankerSplitSchema = z.object({
  numCandidates: z.number(),
  users: z.number(),
  subsetUsers: z.number(),
  retriever: metricsSchema,
  retrieverOnSubset: metricsSchema,
  rankerOnSubset: metricsSchema,
  overall: metricsSchema,
});

const rankerMetricsSchema = z.object({
  backend: z.string().optional(),
  model: z.string().optional(),
  adapter: z.string().nullable().optional(),
  splits: z.object({ val: rankerSplitSchema.optional(), test: rankerSplitSchema.optional() }),
});

const rankerConfigSchema = z.object({
  model: z.string(),
  training: z.object({ mode: z.string() }).partial().optional(),
});

const trainSummarySchema = z.object({
  steps: z.number(),
  examplesSeen: z.number(),
  seconds: z.number(),
  stoppedEarly: z.boolean(),
  bestStep: z.number().nullable().optional(),
  trainableParameters: z.number(),
  totalParameters: z.number(),
});

async function readValidated<T extends z.ZodType>(
  path: string,
  what: string,
  schema: T,
): Promise<z.output<T>> {
  const parsed = schema.safeParse(await readJsonFile(path, what));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InputError(`${path}: field "${issue.path.join(".")}": ${issue.message}`);
  }
  return parsed.data;
}

/**
 * A train-log.jsonl as a curve: `train` lines give the loss, `val` lines the validation metric; the x value
 * is `iteration` or `step`, whichever the line has. A torn last line (a kill mid-append) is ignored; any
 * other unreadable line is an InputError naming the line.
 */
export function parseTrainLog(text: string, path: string, validationMetric = "Recall@10"): TrainingCurve {
  const loss: CurvePoint[] = [];
  const validation: CurvePoint[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      if (i === lines.length - 1) return; // torn last line: no newline after it
      throw new InputError(`${path}:${i + 1}: not valid JSON`);
    }
    const x = typeof rec.iteration === "number" ? rec.iteration : rec.step;
    if (typeof x !== "number") throw new InputError(`${path}:${i + 1}: no "iteration" or "step" number`);
    if (rec.type === "train" && typeof rec.loss === "number") loss.push({ x, y: rec.loss });
    if (rec.type === "val") {
      const m = rec.metrics as Record<string, unknown> | undefined;
      const v = m?.[validationMetric];
      if (typeof v === "number") validation.push({ x, y: v });
    }
  });
  return { loss, validation, validationMetric };
}

async function readCurve(path: string): Promise<TrainingCurve | null> {
  if (!existsSync(path)) return null;
  return parseTrainLog(await readFile(path, "utf8"), path);
}

async function readRetriever(runDir: string, config: RunConfig): Promise<RetrieverData | null> {
  const p = runPaths(runDir).retriever;
  if (!existsSync(p.metrics)) return null;
  const m = await readValidated(p.metrics, "retriever metrics", retrieverMetricsSchema);
  const maxEpochs = config.retriever?.training.maxEpochs;
  return {
    model: m.model,
    val: m.val ?? null,
    test: m.test ?? null,
    selection: m.selection ?? null,
    maxEpochs: typeof maxEpochs === "number" ? maxEpochs : null,
    candidates: m.candidates ?? null,
    curve: await readCurve(p.trainLog),
  };
}

async function readRanker(runDir: string): Promise<RankerData | null> {
  const p = runPaths(runDir).ranker;
  if (!existsSync(p.metrics)) return null;
  const metrics = await readValidated(p.metrics, "ranker metrics", rankerMetricsSchema);
  const config = existsSync(p.config)
    ? await readValidated(p.config, "ranker config", rankerConfigSchema)
    : null;
  const summary = existsSync(p.summary)
    ? await readValidated(p.summary, "ranker training summary", trainSummarySchema)
    : null;
  return {
    model: config?.model ?? metrics.model ?? "unknown",
    mode: config?.training?.mode ?? null,
    backend: metrics.backend ?? null,
    adapter: metrics.adapter ?? null,
    training: summary,
    val: metrics.splits.val ?? null,
    test: metrics.splits.test ?? null,
    curve: await readCurve(p.trainLog),
  };
}

/** Everything the report shows about one run folder. */
export async function readRunData(runDir: string): Promise<RunData> {
  const config = await readRunConfig(runDir);
  const retriever = await readRetriever(runDir, config);
  const ranker = await readRanker(runDir);
  if (!retriever && !ranker) {
    throw new InputError(
      `${runDir}: nothing to report yet (no ${runPaths(runDir).retriever.metrics}); train the retriever first`,
    );
  }
  return {
    name: basename(runPaths(runDir).root),
    dir: runPaths(runDir).root,
    dataset: config.dataset,
    retriever,
    ranker,
    stages: config.stages ?? {},
  };
}
