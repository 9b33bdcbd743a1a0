/**
 * The run's config.json: the dataset it was made on, each stage's resolved settings and, per stage, what
 * happened (status, the hash of its inputs, its outputs, wall time, peak memory). Validated on read: a
 * field of the wrong shape is an InputError naming the file and the field.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { writeJsonAtomic } from "../util/atomic.js";
import { InputError } from "../util/errors.js";
import { runPaths } from "./paths.js";

export const STAGE_STATUSES = ["running", "done", "failed"] as const;
export type StageStatus = (typeof STAGE_STATUSES)[number];

const stageRecordSchema = z.object({
  status: z.enum(STAGE_STATUSES),
  /** sha256 of the stage's settings and its upstream stages' hashes: unchanged inputs → skip. */
  inputsHash: z.string(),
  /** Files and folders the stage wrote, relative to the run folder. */
  outputs: z.array(z.string()),
  startedAt: z.string(),
  finishedAt: z.string().optional(),
  /** Wall time of the stage, summed over resumed sessions. */
  wallSeconds: z.number().nonnegative(),
  /** Peak resident set size of the process while the stage ran (max over sessions), MiB. */
  peakRssMiB: z.number().nonnegative(),
  error: z.string().optional(),
});
export type StageRecord = z.output<typeof stageRecordSchema>;

const datasetRefSchema = z.object({
  /** Name loadDataset understands, e.g. "ml-latest-small". */
  name: z.string(),
  /** Loader options as given (data dir, filters); enough to load the same split again. */
  options: z.record(z.string(), z.unknown()).optional(),
  fingerprint: z.string(),
  numUsers: z.number().int().nonnegative(),
  numItems: z.number().int().nonnegative(),
});
export type DatasetRef = z.output<typeof datasetRefSchema>;

const retrieverSectionSchema = z.object({
  model: z.string(),
  /** Options the model factory was called with. */
  modelOptions: z.record(z.string(), z.unknown()),
  /** The model's resolved configuration (every default filled in), as in model.json. */
  modelConfig: z.record(z.string(), z.unknown()).optional(),
  /** Resolved trainer configuration (every default filled in). */
  training: z.record(z.string(), z.unknown()),
});

const runConfigSchema = z
  .object({
    /** Schema version of this file. */
    version: z.literal(1),
    createdAt: z.string(),
    dataset: datasetRefSchema,
    retriever: retrieverSectionSchema.optional(),
    /** Stage name → what happened (written by the pipeline). */
    stages: z.record(z.string(), stageRecordSchema).optional(),
  })
  .catchall(z.unknown());

export type RunConfig = z.output<typeof runConfigSchema>;

export async function readJsonFile(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new InputError(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(`${path}: not valid JSON (${(err as Error).message})`);
  }
}

/** Validates a parsed config.json; errors name the file and the first bad field. */
export function parseRunConfig(value: unknown, path: string): RunConfig {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InputError(`${path}: expected a JSON object`);
  }
  const v = value as Record<string, unknown>;
  if (v.version !== 1)
    throw new InputError(`${path}: field "version": expected 1, got ${JSON.stringify(v.version)}`);
  const parsed = runConfigSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InputError(`${path}: field "${issue.path.join(".")}": ${issue.message}`);
  }
  // The file as written (key order kept: checkpoints compare JSON of config sections).
  return value as RunConfig;
}

export function hasRunConfig(runDir: string): boolean {
  return existsSync(runPaths(runDir).config);
}

export async function readRunConfig(runDir: string): Promise<RunConfig> {
  const path = runPaths(runDir).config;
  if (!existsSync(path)) throw new InputError(`${runDir} is not a run folder: ${path} does not exist`);
  return parseRunConfig(await readJsonFile(path, "run config"), path);
}

export async function writeRunConfig(runDir: string, config: RunConfig): Promise<void> {
  await writeJsonAtomic(runPaths(runDir).config, config);
}

/** Read, change, write back (atomically); returns the written config. */
export async function updateRunConfig(
  runDir: string,
  change: (config: RunConfig) => void,
): Promise<RunConfig> {
  const config = await readRunConfig(runDir);
  change(config);
  await writeRunConfig(runDir, config);
  return config;
}
