/**
 * LlamaRec's two-stage metrics, matching the official code (dataloader/llm.py + trainer/llm.py):
 * - retrieval subset: users whose label is among the retriever's top-`numCandidates` (20) items;
 * - ranker on subset ("subset_metrics"): the ranker's order over those candidates;
 * - overall ("overall_metrics"): every user, the ranker's rank if the label was a candidate, else the
 *   retriever's rank (> numCandidates, so a miss at every k <= numCandidates).
 * The official code gets overall as (subset * retrievalSize + nonRetrieval * rest) / allUsers for
 * k in rerank_metric_ks; a per-user average of the combined ranks is the same number for k <= 20 and,
 * for larger k, measures the final list [ranked candidates, then the retriever's remaining order].
 */
import { DEFAULT_KS, type Metrics, metricsFromRanks } from "./metrics.js";
import type { UserRank } from "./user-ranks.js";

export const DEFAULT_NUM_CANDIDATES = 20;

/** Users whose label the retriever put in its top-`numCandidates`. With pessimistic ties, rank <= n
 * guarantees the label is in any top-n cut; callers that hold the actual candidate lists can filter
 * with metricsForUsers instead. */
export function retrievalSubset(
  retrieval: readonly UserRank[],
  numCandidates = DEFAULT_NUM_CANDIDATES,
): UserRank[] {
  return retrieval.filter((r) => r.rank <= numCandidates);
}

/** Metrics over the users accepted by `keep` (a set of user ids or a predicate). */
export function metricsForUsers(
  results: readonly UserRank[],
  keep: ReadonlySet<number> | ((r: UserRank) => boolean),
  ks: readonly number[] = DEFAULT_KS,
): Metrics {
  const accept = typeof keep === "function" ? keep : (r: UserRank) => keep.has(r.user);
  return metricsFromRanks(results.filter(accept), ks);
}

export interface CombinedRanks {
  ranks: UserRank[];
  /** Users the retriever placed in the candidates but the ranker has no result for; counted as misses. */
  missingRankerUsers: number[];
}

/** Overall per-user ranks after the ranking stage. */
export function combineRanks(
  retrieval: readonly UserRank[],
  ranker: readonly UserRank[],
  numCandidates = DEFAULT_NUM_CANDIDATES,
): CombinedRanks {
  const byUser = new Map<number, UserRank>();
  for (const r of ranker) {
    if (r.rank > numCandidates) {
      throw new RangeError(
        `ranker rank ${r.rank} for user ${r.user} exceeds the ${numCandidates} candidates`,
      );
    }
    byUser.set(r.user, r);
  }
  const seen = new Set<number>();
  const missing: number[] = [];
  const ranks = retrieval.map((r) => {
    seen.add(r.user);
    const ranked = byUser.get(r.user);
    if (ranked) {
      if (ranked.label !== r.label) {
        throw new RangeError(`user ${r.user}: ranker label ${ranked.label} != retriever label ${r.label}`);
      }
      return ranked;
    }
    if (r.rank <= numCandidates) {
      missing.push(r.user);
      // Not in the shown list: the first position after it.
      return { user: r.user, label: r.label, rank: Math.max(r.rank, numCandidates + 1) };
    }
    return r;
  });
  for (const user of byUser.keys()) {
    if (!seen.has(user)) throw new RangeError(`ranker has user ${user} that the retriever results lack`);
  }
  return { ranks, missingRankerUsers: missing };
}

export interface TwoStageReport {
  numCandidates: number;
  /** All evaluated users ("original_size"). */
  users: number;
  /** Users in the retrieval subset ("retrieval_size"). */
  subsetUsers: number;
  /** Retriever over all users ("original_metrics"). */
  retriever: Metrics;
  /** Retriever over the subset ("retrieval_metrics"). */
  retrieverOnSubset: Metrics;
  /** Ranker over the subset ("subset_metrics"). */
  rankerOnSubset: Metrics;
  /** Both stages over all users ("overall_metrics"). */
  overall: Metrics;
  missingRankerUsers: number[];
}

export function twoStageReport(
  retrieval: readonly UserRank[],
  ranker: readonly UserRank[],
  options: { ks?: readonly number[]; numCandidates?: number } = {},
): TwoStageReport {
  const ks = options.ks ?? DEFAULT_KS;
  const numCandidates = options.numCandidates ?? DEFAULT_NUM_CANDIDATES;
  const combined = combineRanks(retrieval, ranker, numCandidates);
  const subset = new Set(retrieval.filter((r) => r.rank <= numCandidates).map((r) => r.user));
  for (const r of ranker) subset.add(r.user);
  return {
    numCandidates,
    users: retrieval.length,
    subsetUsers: subset.size,
    retriever: metricsFromRanks(retrieval, ks),
    retrieverOnSubset: metricsForUsers(retrieval, subset, ks),
    rankerOnSubset: metricsForUsers(combined.ranks, subset, ks),
    overall: metricsFromRanks(combined.ranks, ks),
    missingRankerUsers: combined.missingRankerUsers,
  };
}
