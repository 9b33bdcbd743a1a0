/**
 * LlamaRec's second stage end to end: the retriever's candidates in, the LLM's order out.
 *
 * For every (split, user) of the candidates file whose label is among the candidates (the official
 * "retrieval subset"; `allUsers` ranks the others too) the prompt shows the last 20 history items and the
 * candidates in the retriever's order as letters A..T; the backend's letter scores, log-softmaxed over the
 * letters (verbalizer), reorder them. Ties keep the retriever's order (stable sort), so letters a remote
 * server did not list stay below the listed ones in retriever order.
 *
 * Position-bias control (`orders` > 1): each user is also asked with `orders - 1` seeded shuffles of the
 * candidates; an item's score is the mean of its letter log-probs over the orders. Costs `orders` times
 * the prompts.
 *
 * Metrics per split (src/eval two-stage): retriever on all users, retriever and ranker on the retrieval
 * subset (same users, the ranker's vs the retriever's order of the same 20), and overall (ranker order
 * inside the top-20, misses stay misses), as the official subset_metrics / overall_metrics.
 */
import type { Dataset } from "../data/dataset.js";
import { type Metrics, type TwoStageReport, twoStageReport } from "../eval/index.js";
import type { UserRank } from "../eval/user-ranks.js";
import type { CandidateRecord } from "../retrievers/candidates.js";
import { type RankerPaths, rankerPaths } from "../run/paths.js";
import { Rng } from "../tensor/rng.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import type { PromptIds, RankerBackend } from "./backend.js";
import type { PromptBuilder } from "./prompt.js";
import {
  DEFAULT_MAX_HISTORY,
  DEFAULT_NUM_CANDIDATES,
  type RankingInstance,
  shuffleInPlace,
  toRankingExample,
} from "./training/examples.js";
import { logSoftmax, type Verbalizer } from "./verbalizer.js";

export const RANK_KS: readonly number[] = [1, 5, 10];

export interface ScoringSetup {
  dataset: Dataset;
  backend: RankerBackend;
  prompts: PromptBuilder;
  verbalizer: Verbalizer;
  /** Candidate orders averaged per user (position-bias control); default 1 (retriever order only). */
  orders?: number;
  seed?: number;
  /** Prompts per backend call; default 32. */
  chunkSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Per candidate (in the instance's candidate order) the mean letter log-prob over the orders. */
export async function scoreInstances(
  instances: readonly RankingInstance[],
  setup: ScoringSetup,
): Promise<Float32Array[]> {
  const orders = setup.orders ?? 1;
  if (!Number.isInteger(orders) || orders < 1)
    throw new RangeError(`orders must be a positive integer, got ${orders}`);
  const rng = new Rng(setup.seed ?? 0);
  // permutations[i][o][p] = index into instance i's candidates shown at letter p in order o.
  const jobs: Array<{ instance: number; perm: number[] }> = [];
  instances.forEach((inst, i) => {
    const n = inst.candidates.length;
    if (n > setup.verbalizer.ids.length) {
      throw new RangeError(
        `user ${inst.user}: ${n} candidates but the verbalizer has ${setup.verbalizer.ids.length} letters`,
      );
    }
    const identity = Array.from({ length: n }, (_, p) => p);
    jobs.push({ instance: i, perm: identity });
    for (let o = 1; o < orders; o++) jobs.push({ instance: i, perm: shuffleInPlace([...identity], rng) });
  });
  const sums = instances.map((inst) => new Float64Array(inst.candidates.length));
  const chunk = Math.max(1, setup.chunkSize ?? 32);
  for (let start = 0; start < jobs.length; start += chunk) {
    const part = jobs.slice(start, start + chunk);
    const prompts: PromptIds[] = part.map(({ instance, perm }) => {
      const inst = instances[instance]!;
      const shown = { ...inst, candidates: perm.map((p) => inst.candidates[p]!) };
      const built = setup.prompts.build(toRankingExample(setup.dataset, shown));
      return { ids: built.ids, letterIds: setup.verbalizer.ids.slice(0, perm.length) };
    });
    const raw = await setup.backend.scorePrompts(prompts);
    if (raw.length !== prompts.length) {
      throw new Error(
        `backend ${setup.backend.name} returned ${raw.length} results for ${prompts.length} prompts`,
      );
    }
    part.forEach(({ instance, perm }, k) => {
      const letters = raw[k]!;
      if (letters.length !== perm.length) {
        throw new Error(
          `backend ${setup.backend.name} returned ${letters.length} scores for ${perm.length} letters`,
        );
      }
      for (let p = 0; p < perm.length; p++) {
        if (Number.isNaN(letters[p]!)) {
          throw new Error(
            `backend ${setup.backend.name} returned NaN for user ${instances[instance]!.user} (diverged model?)`,
          );
        }
      }
      const logProbs = logSoftmax(letters);
      perm.forEach((candidate, letter) => {
        sums[instance]![candidate]! += logProbs[letter]!;
      });
    });
    setup.onProgress?.(Math.min(start + chunk, jobs.length), jobs.length);
  }
  return sums.map((s) => Float32Array.from(s, (v) => v / orders));
}

/** Indices of `scores` best first; ties keep index order. */
export function orderByScore(scores: ArrayLike<number>): number[] {
  return Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => {
    const d = scores[b]! - scores[a]!;
    return d !== 0 && !Number.isNaN(d) ? d : a - b;
  });
}

export interface RankedRecord {
  split: "val" | "test";
  user: number;
  label: number;
  /** Candidates in the ranker's order. */
  candidates: number[];
  /** Mean letter log-probs, aligned with `candidates`. */
  scores: number[];
  /** Retriever's full-ranking rank of the label (candidates file). */
  labelRankBefore: number;
  /** 1-based position of the label in `candidates`; null when the label is not a candidate. */
  labelRankAfter: number | null;
}

export interface SplitRankMetrics extends Omit<TwoStageReport, "missingRankerUsers"> {
  /** Users the retriever covered but the ranker did not rank (should be empty). */
  missingRankerUsers: number;
}

export interface RankResult {
  ranked: RankedRecord[];
  metrics: Partial<Record<"val" | "test", SplitRankMetrics>>;
  prompts: number;
  seconds: number;
}

export interface RankOptions extends ScoringSetup {
  records: readonly CandidateRecord[];
  splits?: readonly ("val" | "test")[];
  /** Also rank users whose label the retriever missed (serving-style output; metrics unchanged). */
  allUsers?: boolean;
  numCandidates?: number;
  maxHistory?: number;
  ks?: readonly number[];
}

function historyFor(dataset: Dataset, split: "val" | "test", user: number, maxHistory: number): number[] {
  const train = dataset.train[user] ?? [];
  return (split === "val" ? train : [...train, dataset.val[user]!]).slice(-maxHistory);
}

export async function rankCandidates(options: RankOptions): Promise<RankResult> {
  const started = performance.now();
  const { dataset } = options;
  const numCandidates = options.numCandidates ?? DEFAULT_NUM_CANDIDATES;
  const maxHistory = options.maxHistory ?? DEFAULT_MAX_HISTORY;
  const splits = options.splits ?? ["val", "test"];
  const instances: RankingInstance[] = [];
  const sources: CandidateRecord[] = [];
  for (const r of options.records) {
    if (!splits.includes(r.split)) continue;
    if (r.user < 1 || r.user > dataset.numUsers) {
      throw new RangeError(
        `candidates: user ${r.user} is outside the dataset's users 1..${dataset.numUsers}`,
      );
    }
    const expected = r.split === "val" ? dataset.val[r.user] : dataset.test[r.user];
    if (expected !== r.label) {
      throw new RangeError(
        `candidates: user ${r.user} ${r.split} label ${r.label} differs from the dataset's ${expected}; wrong dataset for this run?`,
      );
    }
    const candidates = r.candidates.slice(0, numCandidates);
    const answerIndex = candidates.indexOf(r.label);
    if (answerIndex < 0 && !options.allUsers) continue;
    instances.push({
      split: r.split,
      user: r.user,
      history: historyFor(dataset, r.split, r.user, maxHistory),
      candidates,
      answerIndex,
    });
    sources.push(r);
  }
  const scores = await scoreInstances(instances, options);
  const ranked: RankedRecord[] = instances.map((inst, i) => {
    const order = orderByScore(scores[i]!);
    const candidates = order.map((p) => inst.candidates[p]!);
    const after = candidates.indexOf(sources[i]!.label);
    return {
      split: inst.split as "val" | "test",
      user: inst.user,
      label: sources[i]!.label,
      candidates,
      scores: order.map((p) => scores[i]![p]!),
      labelRankBefore: sources[i]!.labelRank,
      labelRankAfter: after < 0 ? null : after + 1,
    };
  });
  const metrics: RankResult["metrics"] = {};
  for (const split of splits) {
    const records = options.records.filter((r) => r.split === split);
    if (records.length === 0) continue;
    metrics[split] = splitMetrics(
      records,
      ranked.filter((r) => r.split === split),
      numCandidates,
      options.ks ?? RANK_KS,
    );
  }
  return {
    ranked,
    metrics,
    prompts: instances.length * (options.orders ?? 1),
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * Two-stage metrics of one split. The retriever's rank of a covered label is its position in the
 * candidate list (what the ranker reorders); an uncovered label is a miss at every k <= numCandidates.
 */
export function splitMetrics(
  records: readonly CandidateRecord[],
  ranked: readonly RankedRecord[],
  numCandidates: number,
  ks: readonly number[],
): SplitRankMetrics {
  const retrieval: UserRank[] = records.map((r) => {
    const pos = r.candidates.slice(0, numCandidates).indexOf(r.label);
    return {
      user: r.user,
      label: r.label,
      rank: pos >= 0 ? pos + 1 : Math.max(r.labelRank, numCandidates + 1),
    };
  });
  const ranker: UserRank[] = ranked
    .filter((r) => r.labelRankAfter !== null)
    .map((r) => ({ user: r.user, label: r.label, rank: r.labelRankAfter! }));
  const report = twoStageReport(retrieval, ranker, { ks, numCandidates });
  return { ...report, missingRankerUsers: report.missingRankerUsers.length };
}

export function formatRanked(records: Iterable<RankedRecord>): string {
  let out = "";
  for (const r of records) {
    out += `${JSON.stringify({
      split: r.split,
      user: r.user,
      label: r.label,
      labelRankBefore: r.labelRankBefore,
      labelRankAfter: r.labelRankAfter,
      candidates: r.candidates,
      scores: r.scores.map((s) => (Number.isFinite(s) ? Math.round(s * 1e6) / 1e6 : null)),
    })}\n`;
  }
  return out;
}

/** Writes ranker/ranked.jsonl and ranker/metrics.json atomically. */
export async function writeRankOutputs(
  rankerDir: string,
  result: RankResult,
  info: Record<string, unknown> = {},
): Promise<RankerPaths> {
  const paths = rankerPaths(rankerDir);
  await writeFileAtomic(paths.ranked, formatRanked(result.ranked));
  await writeJsonAtomic(paths.metrics, {
    ...info,
    prompts: result.prompts,
    seconds: Math.round(result.seconds * 1000) / 1000,
    splits: result.metrics,
  });
  return paths;
}

/** "NDCG@10 0.4123 (retriever 0.3810)" lines for logs. */
export function summarizeRankMetrics(
  metrics: RankResult["metrics"],
  keys = ["NDCG@10", "Recall@5"],
): string[] {
  const lines: string[] = [];
  for (const [split, m] of Object.entries(metrics) as Array<[string, SplitRankMetrics]>) {
    const show = (name: string, x: Metrics) => (x[name] === undefined ? "n/a" : x[name]!.toFixed(4));
    const parts = keys.map(
      (k) =>
        `${k} ranker ${show(k, m.rankerOnSubset)} vs retriever ${show(k, m.retrieverOnSubset)}, overall ${show(k, m.overall)}`,
    );
    lines.push(
      `${split} (${m.subsetUsers}/${m.users} users in the top-${m.numCandidates}): ${parts.join("; ")}`,
    );
  }
  return lines;
}
