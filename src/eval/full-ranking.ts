/**
 * Full-ranking evaluation of a scoring model over a dataset split: every user with a held-out item gets
 * the rank of that item among all items, with their history excluded.
 */
import type { Dataset } from "../data/dataset.js";
import { type Events, NO_EVENTS, startProgress } from "../util/events.js";
import { labelStanding, rankFromStanding, type TieMode } from "./rank.js";
import type { UserRank } from "./user-ranks.js";

export type Split = "val" | "test";

/**
 * Which already-seen items never count (same names as src/retrievers/evaluate.ts):
 * "full": every item the user interacted with before the label (default; an item already consumed is
 * not a useful recommendation). "input": only the last `windowLen` items, the model's input — what the
 * official LRURec/LlamaRec code masks. "none": nothing (official validation during training).
 */
export type ExcludeMode = "full" | "input" | "none";
export const EXCLUDE_MODES: readonly ExcludeMode[] = ["full", "input", "none"];

/** The input sequence for predicting `split`'s item: train for val, train + val for test. */
export function inputSequence(dataset: Dataset, user: number, split: Split): readonly number[] {
  const train = dataset.train[user] ?? [];
  if (split === "val") return train;
  const val = dataset.val[user] ?? 0;
  return val > 0 ? [...train, val] : train;
}

export function labelOf(dataset: Dataset, user: number, split: Split): number {
  return (split === "val" ? dataset.val[user] : dataset.test[user]) ?? 0;
}

export function excludedItems(
  dataset: Dataset,
  user: number,
  split: Split,
  mode: ExcludeMode = "full",
  windowLen?: number,
): readonly number[] {
  if (mode === "none") return [];
  const seq = inputSequence(dataset, user, split);
  if (mode === "full") return seq;
  if (windowLen === undefined || windowLen < 1) {
    throw new RangeError("exclude mode 'input' needs windowLen >= 1");
  }
  return seq.slice(-windowLen);
}

/** Scores for a batch of users: row b (length numItems + 1, index 0 = padding) belongs to users[b]. */
export type BatchScorer = (users: readonly number[]) => Float32Array | Promise<Float32Array>;

export interface FullRankingOptions {
  tie?: TieMode;
  exclude?: ExcludeMode;
  windowLen?: number;
  batchSize?: number;
  /** Evaluate only these users (default: every user with a label in the split). */
  users?: readonly number[];
  /** Label for the progress line; null = no progress output. */
  progressLabel?: string | null;
  /** Where progress is reported (default: nowhere). */
  events?: Events;
}

/**
 * One user's record from one score row (length numItems + 1, index 0 = padding): the single place where
 * exclusion, ties and tie counts are applied, for every full-ranking evaluation (rankUsers here and the
 * retrievers' validation and test in src/retrievers/evaluate.ts). Expected-tie mode keeps the tie count so
 * metrics can average over the tied positions exactly.
 */
export function userRank(
  row: Float32Array | Float64Array,
  user: number,
  label: number,
  excluded: Iterable<number>,
  tie: TieMode,
): UserRank {
  const standing = labelStanding(row, label, excluded);
  const rank = rankFromStanding(standing, tie);
  return tie === "expected" && standing.ties > 0
    ? { user, label, rank, ties: standing.ties }
    : { user, label, rank };
}

export async function rankUsers(
  dataset: Dataset,
  split: Split,
  score: BatchScorer,
  options: FullRankingOptions = {},
): Promise<UserRank[]> {
  const tie = options.tie ?? "pessimistic";
  const mode = options.exclude ?? "full";
  const batchSize = options.batchSize ?? 128;
  const width = dataset.numItems + 1;
  const users = (options.users ?? Array.from({ length: dataset.numUsers }, (_, i) => i + 1)).filter(
    (u) => labelOf(dataset, u, split) > 0,
  );
  const bar =
    options.progressLabel === null
      ? null
      : startProgress(options.events ?? NO_EVENTS, options.progressLabel ?? `ranking ${split}`, users.length);
  const out: UserRank[] = [];
  for (let start = 0; start < users.length; start += batchSize) {
    const batch = users.slice(start, start + batchSize);
    const scores = await score(batch);
    if (scores.length !== batch.length * width) {
      throw new RangeError(`scorer returned ${scores.length} scores, expected ${batch.length} × ${width}`);
    }
    batch.forEach((user, b) => {
      const row = scores.subarray(b * width, (b + 1) * width);
      const label = labelOf(dataset, user, split);
      out.push(userRank(row, user, label, excludedItems(dataset, user, split, mode, options.windowLen), tie));
    });
    bar?.tick(batch.length);
  }
  bar?.done();
  return out;
}
