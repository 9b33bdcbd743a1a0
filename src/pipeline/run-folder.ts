/**
 * A run folder: everything one experiment produced, self-describing enough to re-evaluate later.
 *
 *   runs/<name>/config.json                resolved config + dataset fingerprint
 *   runs/<name>/retriever/model.safetensors best weights
 *   runs/<name>/retriever/model.json        {model, config}: rebuilds the model before loading weights
 *   runs/<name>/retriever/train-log.jsonl   training curve
 *   runs/<name>/retriever/metrics.json      validation + test metrics and the evaluation policy
 *   runs/<name>/retriever/candidates.jsonl  top-k per (split, user) for the ranker
 *   runs/<name>/retriever/checkpoint/       resume state (latest.json points at a complete snapshot)
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import type { Dataset } from "../data/dataset.js";
import { type DatasetSpec, type LoadOptions, loadDataset } from "../data/index.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { InputError } from "../util/errors.js";

export const DEFAULT_RUNS_ROOT = "runs";

export interface RunPaths {
  root: string;
  config: string;
  retrieverDir: string;
  model: string;
  modelJson: string;
  trainLog: string;
  metrics: string;
  candidates: string;
  checkpointDir: string;
}

export function runPaths(runDir: string): RunPaths {
  const root = resolve(runDir);
  const retrieverDir = join(root, "retriever");
  return {
    root,
    config: join(root, "config.json"),
    retrieverDir,
    model: join(retrieverDir, "model.safetensors"),
    modelJson: join(retrieverDir, "model.json"),
    trainLog: join(retrieverDir, "train-log.jsonl"),
    metrics: join(retrieverDir, "metrics.json"),
    candidates: join(retrieverDir, "candidates.jsonl"),
    checkpointDir: join(retrieverDir, "checkpoint"),
  };
}

const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** A bare name lives under runsRoot; anything with a path separator (or absolute) is used as given. */
export function resolveRunDir(nameOrPath: string, runsRoot = DEFAULT_RUNS_ROOT): string {
  if (isAbsolute(nameOrPath) || nameOrPath.includes("/") || nameOrPath.includes("\\"))
    return resolve(nameOrPath);
  if (!RUN_NAME.test(nameOrPath)) {
    throw new InputError(`run name "${nameOrPath}" must be letters, digits, '.', '_' or '-' (or a path)`);
  }
  return resolve(runsRoot, nameOrPath);
}

/** e.g. "lru-ml-latest-small-20261129-134501" (UTC). */
export function defaultRunName(model: string, dataset: string, now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `${model}-${dataset}-${t}`.replace(/[^A-Za-z0-9._-]/g, "_");
}

/**
 * sha256 of the split itself (ids and order of every user's train/val/test), so a run can tell whether a
 * dataset loaded later is the one it was trained on — independent of file names or preprocessing code.
 */
export function datasetFingerprint(dataset: Dataset): string {
  const h = createHash("sha256");
  h.update(`${dataset.numUsers} ${dataset.numItems}\n`);
  for (let u = 1; u <= dataset.numUsers; u++) {
    h.update(`${(dataset.train[u] ?? []).join(",")};${dataset.val[u] ?? 0};${dataset.test[u] ?? 0}\n`);
  }
  return `sha256:${h.digest("hex")}`;
}

export interface DatasetRef {
  /** Name loadDataset understands, e.g. "ml-latest-small". */
  name: string;
  /** Loader options as given (data dir, filters); enough to load the same split again. */
  options?: Record<string, unknown>;
  fingerprint: string;
  numUsers: number;
  numItems: number;
}

export interface RunConfig {
  /** Schema version of this file. */
  version: 1;
  createdAt: string;
  dataset: DatasetRef;
  retriever?: {
    model: string;
    /** Options the model factory was called with. */
    modelOptions: Record<string, unknown>;
    /** The model's resolved configuration (every default filled in), as in model.json. */
    modelConfig?: Record<string, unknown>;
    /** Resolved trainer configuration (every default filled in). */
    training: Record<string, unknown>;
  };
  [section: string]: unknown;
}

export function datasetRef(dataset: Dataset, options?: Record<string, unknown>): DatasetRef {
  return {
    name: dataset.name,
    ...(options === undefined ? {} : { options }),
    fingerprint: datasetFingerprint(dataset),
    numUsers: dataset.numUsers,
    numItems: dataset.numItems,
  };
}

export async function writeRunConfig(runDir: string, config: RunConfig): Promise<void> {
  await writeJsonAtomic(runPaths(runDir).config, config);
}

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

export async function readRunConfig(runDir: string): Promise<RunConfig> {
  const path = runPaths(runDir).config;
  if (!existsSync(path)) throw new InputError(`${runDir} is not a run folder: ${path} does not exist`);
  const value = await readJsonFile(path, "run config");
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InputError(`${path}: expected a JSON object`);
  }
  const cfg = value as Record<string, unknown>;
  if (cfg.version !== 1)
    throw new InputError(`${path}: field "version": expected 1, got ${JSON.stringify(cfg.version)}`);
  const ds = cfg.dataset as Record<string, unknown> | undefined;
  if (
    typeof ds !== "object" ||
    ds === null ||
    typeof ds.name !== "string" ||
    typeof ds.fingerprint !== "string"
  ) {
    throw new InputError(`${path}: field "dataset": expected {name, fingerprint, ...}`);
  }
  return value as RunConfig;
}

/** Throws when `dataset` is not the split the run was trained on. */
export function checkDatasetMatches(ref: DatasetRef, dataset: Dataset, runDir: string): void {
  const actual = datasetFingerprint(dataset);
  if (actual !== ref.fingerprint) {
    throw new InputError(
      `dataset ${dataset.name} (${actual}) is not the one run ${runDir} was trained on (${ref.name}, ${ref.fingerprint})`,
    );
  }
}

/** What a run records in `dataset.options` so `--resume` and `llamarec eval` can load the same data. */
export interface RecordedDataset {
  spec: DatasetSpec;
  load: LoadOptions;
}

/** Loads the dataset a run recorded in its config.json and checks it is the same split. */
export async function loadRunDataset(
  runDir: string,
): Promise<{ dataset: Dataset; recorded: RecordedDataset }> {
  const config = await readRunConfig(runDir);
  const recorded = config.dataset.options as unknown as RecordedDataset | undefined;
  if (!recorded?.spec) {
    throw new InputError(
      `${runPaths(runDir).config}: the dataset entry records no loader spec; cannot reload it`,
    );
  }
  const { dataset } = await loadDataset(recorded.spec, recorded.load ?? {});
  checkDatasetMatches(config.dataset, dataset, runDir);
  return { dataset, recorded };
}
