/**
 * Recall@k, MRR@k and NDCG@k from ranks, one relevant item per user, averaged over users — the same
 * numbers as the official absolute_recall_mrr_ndcg_for_ks (trainer/utils.py) with one label per row:
 * there Recall@k = hits / min(k, 1), MRR@k = 1/rank and NDCG@k = (1/log2(rank+1)) / IDCG with IDCG = 1.
 *
 * Ties (expected mode): when a result also records `ties` (other items scoring exactly the label's
 * score; rank = the mean position 1 + higher + ties/2), a user's metric is its exact expected value over
 * uniformly random orders of the tied items (McSherry & Najork, ECIR 2008): the mean of the metric over
 * positions 1 + higher … 1 + higher + ties. A bare fractional rank (no `ties`) uses the same three
 * formulas on the rank as a real number: hit iff rank <= k, 1/rank, 1/log2(rank + 1).
 */
export const DEFAULT_KS: readonly number[] = [1, 5, 10, 20, 50];

export type MetricName = "Recall" | "MRR" | "NDCG";
export const METRIC_NAMES: readonly MetricName[] = ["Recall", "MRR", "NDCG"];

/** Keys as the official code writes them: "Recall@10", "MRR@10", "NDCG@10". */
export type Metrics = Record<string, number>;

export function metricKey(name: MetricName, k: number): string {
  return `${name}@${k}`;
}

export function checkKs(ks: readonly number[]): void {
  if (ks.length === 0) throw new RangeError("metric ks must not be empty");
  for (const k of ks) {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`metric k must be a positive integer, got ${k}`);
  }
}

/** A rank, optionally with the number of other items tied with the label (expected-tie mode). */
export type RankLike = number | { readonly rank: number; readonly ties?: number };

/** Metric value of a single user whose label has this rank (and `ties` tied items around it). */
export function userMetric(name: MetricName, rank: number, k: number, ties = 0): number {
  if (!(rank >= 1)) throw new RangeError(`rank must be >= 1, got ${rank}`);
  if (ties > 0) {
    const first = rank - ties / 2;
    if (!(first >= 1)) throw new RangeError(`rank ${rank} with ${ties} ties would start before position 1`);
    // Positions after k contribute 0, so only min(ties + 1, k) terms are summed.
    let sum = 0;
    for (let p = first; p <= first + ties && p <= k; p++) sum += atPosition(name, p);
    return sum / (ties + 1);
  }
  if (rank > k) return 0;
  return atPosition(name, rank);
}

function atPosition(name: MetricName, rank: number): number {
  switch (name) {
    case "Recall":
      return 1;
    case "MRR":
      return 1 / rank;
    case "NDCG":
      return 1 / Math.log2(rank + 1);
  }
}

/** Per-user average of every metric at every k. An empty list gives NaN for each (no users, no number). */
export function metricsFromRanks(ranks: Iterable<RankLike>, ks: readonly number[] = DEFAULT_KS): Metrics {
  checkKs(ks);
  const sorted = [...ks].sort((a, b) => a - b);
  const sums = new Float64Array(sorted.length * METRIC_NAMES.length);
  let count = 0;
  for (const r of ranks) {
    const rank = typeof r === "number" ? r : r.rank;
    const ties = typeof r === "number" ? 0 : (r.ties ?? 0);
    count++;
    sorted.forEach((k, ki) => {
      METRIC_NAMES.forEach((name, mi) => {
        sums[ki * METRIC_NAMES.length + mi]! += userMetric(name, rank, k, ties);
      });
    });
  }
  const out: Metrics = {};
  sorted.forEach((k, ki) => {
    METRIC_NAMES.forEach((name, mi) => {
      out[metricKey(name, k)] = count === 0 ? Number.NaN : sums[ki * METRIC_NAMES.length + mi]! / count;
    });
  });
  return out;
}
