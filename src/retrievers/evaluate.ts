/**
 * Full-ranking evaluation of a retriever on one split: every item is scored for every evaluated user, and the
 * label's rank, exclusion and ties come from src/eval (userRank: the one place for them, shared with
 * rankUsers), so training-time validation, the final test and `llamarec eval` count the same way. Optionally
 * the top-k candidates are kept for the ranker stage (a k-slot insertion buffer, never a full sort).
 *
 * Users are scored in chunks of about EVAL_ROWS input positions (at least `batchSize` users), so that the
 * model's GEMMs, the scoring GEMM [users × d]·[d × items] among them, are large. A chunk's scores do not
 * depend on the chunk size (every row is computed on its own), so metrics are the same for any chunking.
 */

import type { Dataset } from "../data/dataset.js";
import { type ExcludeMode, excludedItems, userRank } from "../eval/full-ranking.js";
import { type Metrics, metricsFromRanks } from "../eval/metrics.js";
import type { TieMode } from "../eval/rank.js";
import { whileHeld } from "../tensor/kernels/hold.js";
import { type Events, startProgress } from "../util/events.js";
import {
  type EvalSplit,
  encodeEvaluationRow,
  evaluationHistory,
  evaluationLabel,
  evaluationUsers,
} from "./batches.js";
import type { SequentialRetriever } from "./types.js";

/**
 * Which already-seen items are removed from the ranking (src/eval ExcludeMode):
 * "input" — the items in the model input (the last maxLen of the history), as the official
 *           calculate_metrics / generate_candidates do; "full" — the whole history; "none" — nothing
 *           (the official trainer's validation during training). The label itself is never removed.
 */
export type HistoryExclusion = ExcludeMode;
export const HISTORY_EXCLUSIONS: readonly HistoryExclusion[] = ["input", "full", "none"];

/** Input positions scored per model call (users × maxLen), unless `batchSize` users are more. */
export const EVAL_ROWS = 16_384;

export interface EvaluationOptions {
  maxLen: number;
  /** Smallest number of users per model call (the official eval batch size). */
  batchSize: number;
  exclude: HistoryExclusion;
  tie: TieMode;
  /** Keep this many top items per user (0 = none). */
  candidateCount: number;
  /** Progress of the users scored (e.g. `llamarec eval`, which otherwise prints nothing for seconds). */
  events?: Events;
}

export interface UserResult {
  user: number;
  label: number;
  rank: number;
  /** Expected-tie mode: other items scoring exactly the label's score (see src/eval/rank.ts). */
  ties?: number;
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
  const { maxLen } = opts;
  const chunk = Math.max(opts.batchSize, Math.floor(EVAL_ROWS / maxLen), 1);
  const width = dataset.numItems + 1;
  const tokens = new Int32Array(Math.min(chunk, Math.max(users.length, 1)) * maxLen);
  const results: UserResult[] = [];
  model.setTraining(false);
  const progress = opts.events ? startProgress(opts.events, `evaluating ${split}`, users.length) : null;
  for (let from = 0; from < users.length; from += chunk) {
    const batchUsers = users.slice(from, from + chunk);
    batchUsers.forEach((u, r) => {
      encodeEvaluationRow(evaluationHistory(dataset, split, u), maxLen, tokens, r);
    });
    // One hold window per model call: its kernel calls find the helper thread awake (src/tensor/kernels/hold.ts);
    // the helper sleeps again during the ranking below (plain JavaScript, up to half of a pass).
    const scores = whileHeld(() =>
      model.scoreNext(tokens.subarray(0, batchUsers.length * maxLen), batchUsers.length, maxLen),
    );
    if (scores.length !== batchUsers.length * width) {
      throw new Error(
        `${model.modelName}.scoreNext returned ${scores.length} scores, expected ${batchUsers.length * width}`,
      );
    }
    batchUsers.forEach((user, r) => {
      const row = scores.subarray(r * width, (r + 1) * width);
      const label = evaluationLabel(dataset, split, user);
      const excluded = excludedItems(dataset, user, split, opts.exclude, maxLen);
      const result: UserResult = userRank(row, user, label, excluded, opts.tie);
      if (opts.candidateCount > 0) {
        const skip = new Set(excluded);
        skip.delete(label);
        const top = topItems(row, opts.candidateCount, skip);
        result.candidates = top.items;
        result.scores = top.scores;
      }
      results.push(result);
    });
    progress?.tick(batchUsers.length);
  }
  progress?.done();
  return { split, results };
}

export function splitMetrics(evaluation: SplitEvaluation, ks: readonly number[]): Metrics {
  // The whole records: expected-tie mode averages each user's metric over its tied positions.
  return metricsFromRanks(evaluation.results, ks);
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
