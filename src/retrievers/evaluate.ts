/**
 * Full-ranking evaluation of a retriever on one split: every item is scored for every evaluated user,
 * the label's rank is taken among all items (src/eval rankOfLabel), and optionally the top-k candidates
 * are kept for the ranker stage.
 */
import type { Dataset } from "../data/dataset.js";
import { type Metrics, metricsFromRanks } from "../eval/metrics.js";
import { rankOfLabel, type TieMode } from "../eval/rank.js";
import {
  type EvalSplit,
  encodeEvaluationRow,
  evaluationHistory,
  evaluationLabel,
  evaluationUsers,
} from "./batches.js";
import type { SequentialRetriever } from "./types.js";

/**
 * Which already-seen items are removed from the ranking:
 * "input" — the items in the model input (the last maxLen of the history), as the official
 *           calculate_metrics / generate_candidates do; "full" — the whole history; "none" — nothing
 *           (the official trainer's validation during training). The label itself is never removed.
 */
export type HistoryExclusion = "input" | "full" | "none";
export const HISTORY_EXCLUSIONS: readonly HistoryExclusion[] = ["input", "full", "none"];

export interface EvaluationOptions {
  maxLen: number;
  batchSize: number;
  exclude: HistoryExclusion;
  tie: TieMode;
  /** Keep this many top items per user (0 = none). */
  candidateCount: number;
}

export interface UserResult {
  user: number;
  label: number;
  rank: number;
  candidates?: number[];
  scores?: number[];
}

export interface SplitEvaluation {
  split: EvalSplit;
  results: UserResult[];
}

export function evaluateSplit(
  model: SequentialRetriever,
  dataset: Dataset,
  split: EvalSplit,
  opts: EvaluationOptions,
): SplitEvaluation {
  if (model.numItems !== dataset.numItems) {
    throw new Error(`model has ${model.numItems} items but dataset ${dataset.name} has ${dataset.numItems}`);
  }
  const users = evaluationUsers(dataset, split);
  const { maxLen, batchSize } = opts;
  const width = dataset.numItems + 1;
  const tokens = new Int32Array(batchSize * maxLen);
  const results: UserResult[] = [];
  model.setTraining(false);
  for (let from = 0; from < users.length; from += batchSize) {
    const batchUsers = users.slice(from, from + batchSize);
    const histories = batchUsers.map((u) => evaluationHistory(dataset, split, u));
    histories.forEach((h, r) => {
      encodeEvaluationRow(h, maxLen, tokens, r);
    });
    const scores = model.scoreNext(tokens.subarray(0, batchUsers.length * maxLen), batchUsers.length, maxLen);
    if (scores.length !== batchUsers.length * width) {
      throw new Error(
        `${model.modelName}.scoreNext returned ${scores.length} scores, expected ${batchUsers.length * width}`,
      );
    }
    batchUsers.forEach((user, r) => {
      const row = scores.subarray(r * width, (r + 1) * width);
      const label = evaluationLabel(dataset, split, user);
      const history = histories[r]!;
      const excluded =
        opts.exclude === "none"
          ? new Set<number>()
          : new Set(opts.exclude === "full" ? history : history.slice(Math.max(0, history.length - maxLen)));
      excluded.delete(label);
      const result: UserResult = { user, label, rank: rankOfLabel(row, label, excluded, opts.tie) };
      if (opts.candidateCount > 0) {
        const top = topItems(row, opts.candidateCount, excluded);
        result.candidates = top.items;
        result.scores = top.scores;
      }
      results.push(result);
    });
  }
  return { split, results };
}

export function splitMetrics(evaluation: SplitEvaluation, ks: readonly number[]): Metrics {
  return metricsFromRanks(
    evaluation.results.map((r) => r.rank),
    ks,
  );
}

/**
 * The k best items of one score row (index 0 = padding, skipped), excluding `excluded`; ordered by score
 * descending, ties by smaller item id first. A small insertion-sorted buffer: k ≪ numItems.
 */
export function topItems(
  scores: Float32Array,
  k: number,
  excluded: ReadonlySet<number>,
): { items: number[]; scores: number[] } {
  const items: number[] = [];
  const vals: number[] = [];
  for (let i = 1; i < scores.length; i++) {
    const s = scores[i]!;
    if (items.length === k && !(s > vals[k - 1]!)) continue;
    if (excluded.has(i)) continue;
    let pos = items.length;
    while (pos > 0 && s > vals[pos - 1]!) pos--;
    items.splice(pos, 0, i);
    vals.splice(pos, 0, s);
    if (items.length > k) {
      items.pop();
      vals.pop();
    }
  }
  return { items, scores: vals };
}
