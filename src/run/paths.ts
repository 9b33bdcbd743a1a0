/**
 * Every path of a run folder, in one place. Stages, the pipeline, the CLI and the report ask this module
 * where a file lives; none of them joins "retriever"/"ranker"/"report" themselves.
 *
 *   runs/<name>/config.json                 validated run config: dataset, settings, status per stage
 *   runs/<name>/data.json                   dataset statistics
 *   runs/<name>/evaluation.json             headline metrics: retriever, ranker on the subset, two-stage
 *   runs/<name>/retriever/model.safetensors best weights
 *   runs/<name>/retriever/model.json        {model, config}: rebuilds the model before loading weights
 *   runs/<name>/retriever/train-log.jsonl   training curve
 *   runs/<name>/retriever/metrics.json      validation + test metrics and the evaluation policy
 *   runs/<name>/retriever/candidates.jsonl  top-k per (split, user) for the ranker
 *   runs/<name>/retriever/checkpoint/       resume state (checkpoint.safetensors)
 *   runs/<name>/ranker/config.json          model, tokenizer, prompt and training settings of the ranker
 *   runs/<name>/ranker/train-log.jsonl      loss / lr / examples/s, validation metrics
 *   runs/<name>/ranker/checkpoint/          resume state (latest.json names a complete step folder)
 *   runs/<name>/ranker/best/                best trainable weights
 *   runs/<name>/ranker/adapter/ .gguf       PEFT LoRA folder and the same adapter for llama.cpp
 *   runs/<name>/ranker/model.gguf           full-trained (scratch) model with its tokenizer
 *   runs/<name>/ranker/train-summary.json   what training did
 *   runs/<name>/ranker/ranked.jsonl         candidates reordered by the ranker
 *   runs/<name>/ranker/metrics.json         retriever / subset / overall metrics
 *   runs/<name>/report/                     report.md, report.json, *.svg
 */
import { existsSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { InputError } from "../util/errors.js";

export const DEFAULT_RUNS_ROOT = "runs";

export interface RetrieverPaths {
  dir: string;
  model: string;
  modelJson: string;
  trainLog: string;
  metrics: string;
  candidates: string;
  checkpointDir: string;
}

export interface RankerPaths {
  dir: string;
  config: string;
  trainLog: string;
  checkpointDir: string;
  latest: string;
  bestDir: string;
  best: string;
  adapterDir: string;
  adapterGguf: string;
  modelGguf: string;
  summary: string;
  ranked: string;
  metrics: string;
  exportDir: string;
}

export interface ReportPaths {
  dir: string;
  markdown: string;
  json: string;
}

export interface RunPaths {
  root: string;
  config: string;
  data: string;
  evaluation: string;
  retriever: RetrieverPaths;
  ranker: RankerPaths;
  report: ReportPaths;
}

export function retrieverPaths(dir: string): RetrieverPaths {
  return {
    dir,
    model: join(dir, "model.safetensors"),
    modelJson: join(dir, "model.json"),
    trainLog: join(dir, "train-log.jsonl"),
    metrics: join(dir, "metrics.json"),
    candidates: join(dir, "candidates.jsonl"),
    checkpointDir: join(dir, "checkpoint"),
  };
}

/** The ranker's files inside `dir` (a run's ranker/ folder, or any folder a trainer is pointed at). */
export function rankerPaths(dir: string): RankerPaths {
  return {
    dir,
    config: join(dir, "config.json"),
    trainLog: join(dir, "train-log.jsonl"),
    checkpointDir: join(dir, "checkpoint"),
    latest: join(dir, "checkpoint", "latest.json"),
    bestDir: join(dir, "best"),
    best: join(dir, "best", "trainable.safetensors"),
    adapterDir: join(dir, "adapter"),
    adapterGguf: join(dir, "adapter.gguf"),
    modelGguf: join(dir, "model.gguf"),
    summary: join(dir, "train-summary.json"),
    ranked: join(dir, "ranked.jsonl"),
    metrics: join(dir, "metrics.json"),
    exportDir: join(dir, "export"),
  };
}

export function reportPaths(dir: string): ReportPaths {
  return { dir, markdown: join(dir, "report.md"), json: join(dir, "report.json") };
}

export function runPaths(runDir: string): RunPaths {
  const root = resolve(runDir);
  return {
    root,
    config: join(root, "config.json"),
    data: join(root, "data.json"),
    evaluation: join(root, "evaluation.json"),
    retriever: retrieverPaths(join(root, "retriever")),
    ranker: rankerPaths(join(root, "ranker")),
    report: reportPaths(join(root, "report")),
  };
}

const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** A bare name lives under runsRoot; anything with a path separator (or absolute) is used as given. */
export function resolveRunDir(nameOrPath: string, runsRoot = DEFAULT_RUNS_ROOT): string {
  if (isAbsolute(nameOrPath) || nameOrPath.includes("/") || nameOrPath.includes("\\"))
    return notAFile(resolve(nameOrPath), "run folder");
  if (!RUN_NAME.test(nameOrPath)) {
    throw new InputError(`run name "${nameOrPath}" must be letters, digits, '.', '_' or '-' (or a path)`);
  }
  notAFile(resolve(runsRoot), "--runs-dir");
  return notAFile(resolve(runsRoot, nameOrPath), "run folder");
}

/** Folders that exist as files are input errors here, not ENOTDIR stack traces later. */
function notAFile(path: string, what: string): string {
  if (existsSync(path) && !statSync(path).isDirectory())
    throw new InputError(`${what} ${path} is a file, not a folder`);
  return path;
}

/** e.g. "lru-ml-latest-small-20261129-134501" (UTC). */
export function defaultRunName(model: string, dataset: string, now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `${model}-${dataset}-${t}`.replace(/[^A-Za-z0-9._-]/g, "_");
}
