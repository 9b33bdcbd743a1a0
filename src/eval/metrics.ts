/**
 * Recall@k, MRR@k and NDCG@k from ranks, one relevant item per user, averaged over users — the same
 * numbers as the official absolute_recall_mrr_ndcg_for_ks (trainer/utils.py) with one label per row:
 * there Recall@k = hits / min(k, 1), MRR@k = 1/rank and NDCG@k = (1/log2(rank+1)) / IDCG with IDCG = 1.
 *
 * Fractional ranks (expected-tie mode) use the same three formulas on the rank as a real number:
 * hit iff rank <= k, MRR = 1/rank, NDCG = 1/log2(rank + 1). This is the metric of the mean tie
 * position, not the mean of the metric over tie orders (which a bare rank cannot give); with
 * continuous scores ties are rare and both agree.
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

/** Metric values of a single user whose label has this rank. */
export function userMetric(name: MetricName, rank: number, k: number): number {
  if (!(rank >= 1)) throw new RangeError(`rank must be >= 1, got ${rank}`);
  if (rank > k) return 0;
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
export function metricsFromRanks(ranks: Iterable<number>, ks: readonly number[] = DEFAULT_KS): Metrics {
  checkKs(ks);
  const sorted = [...ks].sort((a, b) => a - b);
  const sums = new Float64Array(sorted.length * METRIC_NAMES.length);
  let count = 0;
  for (const rank of ranks) {
    count++;
    sorted.forEach((k, ki) => {
      METRIC_NAMES.forEach((name, mi) => {
        sums[ki * METRIC_NAMES.length + mi]! += userMetric(name, rank, k);
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
