/**
 * Retriever training configuration, with the official LlamaRec defaults (config.py + set_template):
 * AdamW lr 1e-3, weight decay 0.01 (not on "bias"/"layer_norm" names), eps 1e-9, no LR schedule
 * (set_template disables it), gradient L2-norm clipping at 5.0 every step, validation every 500
 * iterations (and once before training), early stopping after 20 validations without a strictly better
 * Recall@10; MovieLens: max length 200, batch 16; other datasets: 50 and 64.
 * Evaluation defaults follow the project (README "Evaluation"): the whole history is excluded from the
 * ranking ("full"; the official code masks only the model input: `exclude: "input"`), pessimistic ties;
 * validation during training uses the same exclusion unless `valExclude` says otherwise (the official
 * trainer validates with none: `valExclude: "none"`, `exclude: "input"` is its protocol exactly).
 */
import type { TieMode } from "../eval/rank.js";
import { InputError, rejectUnknownKeys } from "../util/errors.js";
import { HISTORY_EXCLUSIONS, type HistoryExclusion } from "./evaluate.js";

export interface TrainerConfig {
  batchSize: number;
  maxLen: number;
  /** Training window step as a fraction of maxLen (official sliding_window_size). */
  slidingWindow: number;
  lr: number;
  weightDecay: number;
  adamEps: number;
  /** Gradient clipping threshold (L2 norm over all gradients); 0 disables. */
  maxGradNorm: number;
  valEvery: number;
  /** Stop after this many validations without improvement. */
  patience: number;
  /** Stop after this many optimizer steps (null = only early stopping / maxEpochs). */
  maxIterations: number | null;
  maxEpochs: number;
  seed: number;
  metricKs: number[];
  /** Model selection metric, e.g. "Recall@10". */
  bestMetric: string;
  exclude: HistoryExclusion;
  /** Exclusion of the validation during training (model selection, early stopping); null = `exclude`. */
  valExclude: HistoryExclusion | null;
  tie: TieMode;
  evalBatchSize: number;
  /** Candidates kept per user for the ranker. */
  candidateCount: number;
  /** Iterations per train-log line (mean loss over them). */
  logEvery: number;
}

/** The authors' config.py num_epochs: the official schedule's epoch limit (early stopping usually ends first). */
export const OFFICIAL_MAX_EPOCHS = 500;

export function officialDefaults(datasetName: string): TrainerConfig {
  const movieLens = datasetName.toLowerCase().startsWith("ml-");
  return {
    batchSize: movieLens ? 16 : 64,
    maxLen: movieLens ? 200 : 50,
    slidingWindow: 1.0,
    lr: 1e-3,
    weightDecay: 0.01,
    adamEps: 1e-9,
    maxGradNorm: 5.0,
    valEvery: 500,
    patience: 20,
    maxIterations: null,
    maxEpochs: OFFICIAL_MAX_EPOCHS,
    seed: 42,
    metricKs: [1, 5, 10, 20, 50],
    bestMetric: "Recall@10",
    exclude: "full",
    valExclude: null,
    tie: "pessimistic",
    evalBatchSize: movieLens ? 16 : 64,
    candidateCount: 20,
    logEvery: 100,
  };
}

export function resolveTrainerConfig(
  datasetName: string,
  overrides: Partial<TrainerConfig> = {},
): TrainerConfig {
  const defaults = officialDefaults(datasetName);
  rejectUnknownKeys(overrides, defaults, "retriever training");
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  const cfg = { ...defaults, ...defined } as TrainerConfig;
  validateTrainerConfig(cfg);
  return cfg;
}

export function validateTrainerConfig(cfg: TrainerConfig): void {
  const bad = (field: string, want: string): never => {
    throw new InputError(
      `training config "${field}": expected ${want}, got ${JSON.stringify(cfg[field as keyof TrainerConfig])}`,
    );
  };
  const posInt = (f: keyof TrainerConfig) => {
    const v = cfg[f];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) bad(f, "a positive integer");
  };
  const nonNeg = (f: keyof TrainerConfig) => {
    const v = cfg[f];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) bad(f, "a number >= 0");
  };
  for (const f of [
    "batchSize",
    "maxLen",
    "valEvery",
    "patience",
    "maxEpochs",
    "evalBatchSize",
    "logEvery",
  ] as const)
    posInt(f);
  for (const f of ["weightDecay", "maxGradNorm", "candidateCount"] as const) nonNeg(f);
  if (!(cfg.lr > 0) || !Number.isFinite(cfg.lr)) bad("lr", "a number > 0");
  if (!(cfg.adamEps > 0)) bad("adamEps", "a number > 0");
  if (!(cfg.slidingWindow > 0) || Math.trunc(cfg.slidingWindow * cfg.maxLen) < 1)
    bad("slidingWindow", "a fraction with slidingWindow × maxLen >= 1");
  if (cfg.maxIterations !== null) posInt("maxIterations");
  if (!Number.isInteger(cfg.seed)) bad("seed", "an integer");
  if (!Number.isInteger(cfg.candidateCount)) bad("candidateCount", "an integer");
  if (
    !Array.isArray(cfg.metricKs) ||
    cfg.metricKs.length === 0 ||
    cfg.metricKs.some((k) => !Number.isInteger(k) || k < 1)
  ) {
    bad("metricKs", "a non-empty list of positive integers");
  }
  const m = /^(Recall|MRR|NDCG)@(\d+)$/.exec(cfg.bestMetric);
  if (!m) bad("bestMetric", 'a metric like "Recall@10"');
  if (!cfg.metricKs.includes(Number(m![2]))) bad("bestMetric", `a k among metricKs [${cfg.metricKs}]`);
  if (!HISTORY_EXCLUSIONS.includes(cfg.exclude)) bad("exclude", '"input", "full" or "none"');
  // Absent in runs started before the option (their config.json is authoritative on resume): = exclude.
  if (cfg.valExclude != null && !HISTORY_EXCLUSIONS.includes(cfg.valExclude))
    bad("valExclude", '"input", "full", "none" or null');
  if (!["pessimistic", "expected"].includes(cfg.tie)) bad("tie", '"pessimistic" or "expected"');
}
