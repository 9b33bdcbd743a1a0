/**
 * The final evaluation of a trained retriever — shared by the trainer's last step and `evaluateRun`, so
 * the numbers in metrics.json and a later re-evaluation come from the same code on the same saved weights.
 */

import { join } from "node:path";
import type { Dataset } from "../data/dataset.js";
import type { Metrics } from "../eval/metrics.js";
import { checkDatasetMatches, loadRunDataset, readJsonFile, readRunConfig, runPaths } from "../run/index.js";
import { InputError } from "../util/errors.js";
import type { Events } from "../util/events.js";
import { type CandidateRecord, candidateRecords, labelCoverage } from "./candidates.js";
import { CHECKPOINT_FILE, loadCheckpoint } from "./checkpoint.js";
import { evaluateSplit, type HistoryExclusion, splitMetrics } from "./evaluate.js";
import { loadModel, restoreWeights } from "./model-file.js";
import { createRetriever } from "./registry.js";
import type { TrainerConfig } from "./train-config.js";
import type { SequentialRetriever } from "./types.js";

export interface SplitMetrics {
  users: number;
  metrics: Metrics;
}

export interface RetrieverEvaluation {
  val: SplitMetrics;
  test: SplitMetrics;
  candidates: CandidateRecord[];
  coverage: { count: number; val: ReturnType<typeof labelCoverage>; test: ReturnType<typeof labelCoverage> };
}

export function evaluateRetriever(
  model: SequentialRetriever,
  dataset: Dataset,
  cfg: TrainerConfig,
  events?: Events,
): RetrieverEvaluation {
  const opts = {
    ...(events ? { events } : {}),
    maxLen: cfg.maxLen,
    batchSize: cfg.evalBatchSize,
    exclude: cfg.exclude,
    tie: cfg.tie,
    candidateCount: cfg.candidateCount,
  };
  const val = evaluateSplit(model, dataset, "val", opts);
  const test = evaluateSplit(model, dataset, "test", opts);
  const candidates = cfg.candidateCount > 0 ? [...candidateRecords(val), ...candidateRecords(test)] : [];
  return {
    val: { users: val.results.length, metrics: splitMetrics(val, cfg.metricKs) },
    test: { users: test.results.length, metrics: splitMetrics(test, cfg.metricKs) },
    candidates,
    coverage: {
      count: cfg.candidateCount,
      val: labelCoverage(candidates, "val"),
      test: labelCoverage(candidates, "test"),
    },
  };
}

/** Human-readable statement of how the numbers were computed, stored beside them. */
export function evaluationPolicy(cfg: TrainerConfig): Record<string, string> {
  const exclude = {
    input: `items in the model input (the last ${cfg.maxLen} history items) are removed from the ranking, as the official calculate_metrics`,
    full: "every item of the user's history is removed from the ranking",
    none: "nothing is removed from the ranking",
  }[cfg.exclude];
  const tie = {
    pessimistic: "items scoring exactly the label's score rank above it",
    expected: "items scoring exactly the label's score count half above it (fractional rank)",
  }[cfg.tie];
  return {
    ranking:
      "full ranking: the label's rank among all items (never sampled negatives); metrics averaged over users",
    historyExclusion: `${cfg.exclude}: ${exclude}; the label itself is never removed`,
    validationDuringTraining: `history exclusion ${cfg.valExclude ?? cfg.exclude} (model selection and early stopping)`,
    ties: `${cfg.tie}: ${tie}`,
    users:
      "val: users with a validation item, input train[u]; test: users with validation and test items, input train[u] + val[u]",
    candidates: `top ${cfg.candidateCount} by score under the same exclusion, ties to the smaller item id`,
  };
}

export interface EvaluateRunResult {
  runDir: string;
  /** "model": the finished run's model.safetensors; "checkpoint": the best weights so far of its checkpoint. */
  source: "model" | "checkpoint";
  /** Iteration of the evaluated weights, when known (checkpoint: the best validation's iteration). */
  iteration: number | null;
  /** The history exclusion used: the run's own, or the caller's override. */
  exclude: HistoryExclusion;
  val: SplitMetrics;
  test: SplitMetrics;
  /** metrics.json as written by training, when present (model source only). */
  recorded: { val: SplitMetrics; test: SplitMetrics } | null;
  /** True when every recorded metric equals the recomputed one exactly (null: nothing recorded, or another
   *  exclusion than the run's, so nothing to compare with). */
  matchesRecorded: boolean | null;
}

/**
 * Reloads a run's trained retriever and recomputes validation and test metrics. `dataset` must be the
 * split the run was trained on (checked by fingerprint); without it, the dataset recorded in config.json is loaded.
 * With `checkpoint`, evaluates the best weights so far of a running or killed run instead. `exclude` evaluates
 * under another history exclusion than the run's (e.g. "input", the official code's, to compare with numbers
 * it produced); the result is then not compared with metrics.json.
 */
export async function evaluateRun(
  runDir: string,
  dataset?: Dataset,
  options: { checkpoint?: boolean; events?: Events; exclude?: HistoryExclusion } = {},
): Promise<EvaluateRunResult> {
  const paths = runPaths(runDir);
  dataset ??= (await loadRunDataset(runDir)).dataset;
  const config = await readRunConfig(runDir);
  checkDatasetMatches(config.dataset, dataset, runDir);
  if (!config.retriever)
    throw new InputError(`${paths.config}: no "retriever" section (was a retriever trained?)`);
  const trained = config.retriever.training as unknown as TrainerConfig;
  const cfg: TrainerConfig = { ...trained, exclude: options.exclude ?? trained.exclude };
  const ownPolicy = cfg.exclude === trained.exclude;
  if (options.checkpoint) {
    const ckptPath = join(paths.retriever.checkpointDir, CHECKPOINT_FILE);
    const ckpt = loadCheckpoint(ckptPath);
    const model = createRetriever(config.retriever.model, {
      ...config.retriever.modelOptions,
      numItems: dataset.numItems,
      maxLen: cfg.maxLen,
    });
    restoreWeights(model.parameters(), ckpt.best, `${ckptPath} (best weights)`);
    const evaluation = evaluateRetriever(model, dataset, { ...cfg, candidateCount: 0 }, options.events);
    return {
      runDir: paths.root,
      source: "checkpoint",
      iteration: ckpt.state.bestIteration,
      exclude: cfg.exclude,
      val: evaluation.val,
      test: evaluation.test,
      recorded: null,
      matchesRecorded: null,
    };
  }
  const model = await loadModel(paths.retriever.model, paths.retriever.modelJson);
  const evaluation = evaluateRetriever(model, dataset, { ...cfg, candidateCount: 0 }, options.events);
  let recorded: EvaluateRunResult["recorded"] = null;
  let matches: boolean | null = null;
  if (ownPolicy) {
    try {
      const m = (await readJsonFile(paths.retriever.metrics, "metrics")) as {
        val: SplitMetrics;
        test: SplitMetrics;
      };
      recorded = { val: m.val, test: m.test };
      matches = sameMetrics(recorded.val, evaluation.val) && sameMetrics(recorded.test, evaluation.test);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
    }
  }
  return {
    runDir: paths.root,
    source: "model",
    iteration: null,
    exclude: cfg.exclude,
    val: evaluation.val,
    test: evaluation.test,
    recorded,
    matchesRecorded: matches,
  };
}

function sameMetrics(a: SplitMetrics, b: SplitMetrics): boolean {
  if (a.users !== b.users) return false;
  const keys = Object.keys(b.metrics);
  return keys.length === Object.keys(a.metrics).length && keys.every((k) => a.metrics[k] === b.metrics[k]);
}
