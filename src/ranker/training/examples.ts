/**
 * Ranking instances for the LLM ranker, as the official LlamaRec code builds them (dataloader/llm.py):
 *
 * Training (LLMTrainDataset): every prefix of each user's TRAINING sequence with at least two items is one
 * example: answer = the prefix's last item, history = the items before it (the prompt shows the last
 * `maxHistory`), plus `numCandidates - 1` negatives drawn uniformly from 1..numItems, never an item of the
 * whole prefix (not just the shown part) nor the answer; the candidates are then shuffled so the answer's
 * letter is uniform over A..T. No subsampling: one epoch visits every prefix once (lora_num_epochs = 1),
 * in a random order (DataLoader shuffle=True).
 * One deliberate difference: the official sampler can draw the same negative twice (it only rejects
 * history items and the answer); we also reject repeats, so the 20 letters always name 20 distinct items.
 * Negatives are drawn from a generator seeded by (seed, epoch, example index), so an example is the same
 * whether training runs through or resumes from a checkpoint.
 *
 * Validation / test (LLMValidDataset / LLMTestDataset): only users whose label is among the retriever's
 * candidates (the "retrieval subset"); candidates in the retriever's order, NOT shuffled (the shuffle is
 * commented out in the official code); history = train (val) or train + val (test), last `maxHistory`.
 */
import type { Dataset } from "../../data/dataset.js";
import type { CandidateRecord } from "../../retrievers/candidates.js";
import { Rng } from "../../tensor/rng.js";
import { InputError } from "../../util/errors.js";
import type { RankingExample } from "../prompt.js";

export type InstanceSplit = "train" | "val" | "test";

/** One ranking question: pick the answer among the candidates given the history. Item ids throughout. */
export interface RankingInstance {
  split: InstanceSplit;
  user: number;
  /** Items in chronological order, already cut to the last maxHistory. */
  history: number[];
  /** Candidate items in letter order (A first). */
  candidates: number[];
  /** Position of the answer in `candidates`. */
  answerIndex: number;
}

export interface ExampleOptions {
  /** Candidates per question, answer included (official llm_negative_sample_size + 1 = 20). */
  numCandidates?: number;
  /** History items shown (official llm_max_history = 20). */
  maxHistory?: number;
}

export const DEFAULT_NUM_CANDIDATES = 20;
export const DEFAULT_MAX_HISTORY = 20;

/** splitmix-style mixing of several integers into one 32-bit seed. */
function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** Fisher–Yates in place. */
export function shuffleInPlace<T>(values: T[], rng: Rng): T[] {
  for (let i = values.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = values[i]!;
    values[i] = values[j]!;
    values[j] = t;
  }
  return values;
}

/** The training set: every (user, prefix end) pair, negatives drawn on demand. */
export class TrainingExamples {
  readonly numCandidates: number;
  readonly maxHistory: number;
  /** users[i], ends[i]: example i is train[user].slice(0, end), answer = its last item. */
  private readonly users: Int32Array;
  private readonly ends: Int32Array;

  constructor(
    readonly dataset: Dataset,
    readonly seed: number,
    options: ExampleOptions = {},
  ) {
    this.numCandidates = options.numCandidates ?? DEFAULT_NUM_CANDIDATES;
    this.maxHistory = options.maxHistory ?? DEFAULT_MAX_HISTORY;
    if (!Number.isInteger(this.numCandidates) || this.numCandidates < 2 || this.numCandidates > 26) {
      throw new InputError(
        `numCandidates must be an integer in 2..26 (letters A–Z), got ${this.numCandidates}`,
      );
    }
    if (!Number.isInteger(this.maxHistory) || this.maxHistory < 1) {
      throw new InputError(`maxHistory must be a positive integer, got ${this.maxHistory}`);
    }
    let count = 0;
    for (let u = 1; u <= dataset.numUsers; u++) count += Math.max(0, (dataset.train[u]?.length ?? 0) - 1);
    this.users = new Int32Array(count);
    this.ends = new Int32Array(count);
    let k = 0;
    for (let u = 1; u <= dataset.numUsers; u++) {
      const len = dataset.train[u]?.length ?? 0;
      for (let end = 2; end <= len; end++) {
        this.users[k] = u;
        this.ends[k] = end;
        k++;
      }
    }
  }

  get length(): number {
    return this.users.length;
  }

  /** The visiting order of epoch `epoch`: a seeded permutation of 0..length-1. */
  order(epoch: number): Uint32Array {
    const rng = new Rng(mixSeed(this.seed, epoch, 0x6f72646e));
    const out = new Uint32Array(this.length);
    for (let i = 0; i < out.length; i++) out[i] = i;
    for (let i = out.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = out[i]!;
      out[i] = out[j]!;
      out[j] = t;
    }
    return out;
  }

  /** Example `index` as seen in epoch `epoch` (negatives and letter order depend on both). */
  instance(index: number, epoch = 0): RankingInstance {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw new RangeError(`training example ${index} is outside 0..${this.length - 1}`);
    }
    const user = this.users[index]!;
    const prefix = this.dataset.train[user]!.slice(0, this.ends[index]!);
    const answer = prefix[prefix.length - 1]!;
    const before = prefix.slice(0, -1);
    const excluded = new Set(before);
    excluded.add(answer);
    const available = this.dataset.numItems - excluded.size;
    const wanted = this.numCandidates - 1;
    if (available < wanted) {
      throw new InputError(
        `user ${user}: only ${available} items outside the history for ${wanted} negatives; use fewer candidates`,
      );
    }
    const rng = new Rng(mixSeed(this.seed, epoch, index));
    const candidates = [answer];
    while (candidates.length < this.numCandidates) {
      const item = 1 + rng.int(this.dataset.numItems);
      if (excluded.has(item)) continue;
      excluded.add(item);
      candidates.push(item);
    }
    shuffleInPlace(candidates, rng);
    return {
      split: "train",
      user,
      history: before.slice(-this.maxHistory),
      candidates,
      answerIndex: candidates.indexOf(answer),
    };
  }
}

/**
 * Validation or test questions from the retriever's candidates: users whose label is a candidate, in the
 * file's order, candidates cut to the first `numCandidates` and kept in the retriever's order.
 */
export function evaluationInstances(
  dataset: Dataset,
  records: readonly CandidateRecord[],
  split: "val" | "test",
  options: ExampleOptions = {},
): RankingInstance[] {
  const numCandidates = options.numCandidates ?? DEFAULT_NUM_CANDIDATES;
  const maxHistory = options.maxHistory ?? DEFAULT_MAX_HISTORY;
  const out: RankingInstance[] = [];
  for (const r of records) {
    if (r.split !== split) continue;
    if (r.user < 1 || r.user > dataset.numUsers) {
      throw new InputError(
        `candidates: user ${r.user} is outside the dataset's users 1..${dataset.numUsers}`,
      );
    }
    const expected = split === "val" ? dataset.val[r.user] : dataset.test[r.user];
    if (expected !== r.label) {
      throw new InputError(
        `candidates: user ${r.user} ${split} label ${r.label} differs from the dataset's ${expected}; the candidates were made for another split`,
      );
    }
    const candidates = r.candidates.slice(0, numCandidates);
    const answerIndex = candidates.indexOf(r.label);
    if (answerIndex < 0) continue;
    const train = dataset.train[r.user] ?? [];
    const full = split === "val" ? train : [...train, dataset.val[r.user]!];
    out.push({ split, user: r.user, history: full.slice(-maxHistory), candidates, answerIndex });
  }
  return out;
}

/** Titles for the prompt builder. */
export function toRankingExample(dataset: Dataset, instance: RankingInstance): RankingExample {
  const title = (item: number): string => {
    const t = dataset.titles[item];
    if (t === undefined)
      throw new RangeError(`item ${item} has no title (dataset has ${dataset.numItems} items)`);
    return t;
  };
  return { history: instance.history.map(title), candidates: instance.candidates.map(title) };
}
