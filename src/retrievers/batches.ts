/**
 * What a retriever is trained and evaluated on, exactly as the official LlamaRec dataloader/lru.py builds it.
 *
 * Training (LRUTrainDataset): per user in id order, a history shorter than maxLen + step is one sequence;
 * a longer one is cut into windows of maxLen items starting at len−maxLen, len−maxLen−step, … ≥ 0
 * (step = slidingWindow × maxLen; whatever is left before the earliest window is dropped, as official).
 * Each sequence s of n items becomes
 *   tokens = s[:-1] left-padded to maxLen,  labels = s left-padded to maxLen,
 * so token s[j] is labelled s[j+1], and the position just before the first token (a padding token)
 * is labelled s[0] — the official code trains that "first item from nothing" prediction too.
 * Sequences are shuffled every epoch; the last batch of an epoch may be short (DataLoader drop_last=False).
 *
 * Evaluation (LRUValidDataset / LRUTestDataset): validation input = train[u] → label val[u];
 * test input = train[u] + val[u] → label test[u]; the last maxLen items, left-padded.
 */
import type { Dataset } from "../data/dataset.js";
import type { SequenceBatch } from "./types.js";

/** Official LRUTrainDataset windows. Users with an empty history contribute nothing (no label to learn). */
export function trainingSequences(
  train: readonly (readonly number[])[],
  maxLen: number,
  slidingWindow = 1.0,
): number[][] {
  if (!Number.isInteger(maxLen) || maxLen < 1)
    throw new RangeError(`maxLen must be a positive integer, got ${maxLen}`);
  // int(sliding_size * max_len) in the official code.
  const step = Math.trunc(slidingWindow * maxLen);
  if (!(step > 0))
    throw new RangeError(`slidingWindow × maxLen must be ≥ 1, got ${slidingWindow} × ${maxLen}`);
  const out: number[][] = [];
  for (let u = 1; u < train.length; u++) {
    const seq = train[u]!;
    if (seq.length === 0) continue;
    if (seq.length < maxLen + step) {
      out.push([...seq]);
      continue;
    }
    for (let start = seq.length - maxLen; start >= 0; start -= step)
      out.push(seq.slice(start, start + maxLen));
  }
  return out;
}

/** Writes one training example (tokens = s[:-1], labels = s, both left-padded) into row `row` of a batch. */
export function encodeTrainingRow(
  seq: readonly number[],
  maxLen: number,
  tokens: Int32Array,
  labels: Int32Array,
  row: number,
): void {
  const base = row * maxLen;
  tokens.fill(0, base, base + maxLen);
  labels.fill(0, base, base + maxLen);
  const lab = seq.length > maxLen ? seq.slice(seq.length - maxLen) : seq;
  const tok = seq.slice(Math.max(0, seq.length - 1 - maxLen), seq.length - 1);
  for (let i = 0; i < lab.length; i++) labels[base + maxLen - lab.length + i] = lab[i]!;
  for (let i = 0; i < tok.length; i++) tokens[base + maxLen - tok.length + i] = tok[i]!;
}

export function encodeTrainingBatch(seqs: readonly (readonly number[])[], maxLen: number): SequenceBatch {
  const tokens = new Int32Array(seqs.length * maxLen);
  const labels = new Int32Array(seqs.length * maxLen);
  seqs.forEach((s, r) => {
    encodeTrainingRow(s, maxLen, tokens, labels, r);
  });
  return { batchSize: seqs.length, seqLen: maxLen, tokens, labels };
}

/**
 * A permutation of 0..n−1 that depends only on (seed, epoch): a resumed run re-derives the order of the
 * epoch it stopped in, with no shuffle state to checkpoint. Fisher–Yates over a splitmix32 stream.
 */
export function epochOrder(n: number, seed: number, epoch: number): Uint32Array {
  let state = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0;
  const next = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    // Multiply-shift instead of modulo: unbiased enough for n ≪ 2^32 and exact in float64.
    const j = Math.floor((next() / 2 ** 32) * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

export interface BatchSourceOptions {
  batchSize: number;
  maxLen: number;
  slidingWindow: number;
  seed: number;
}

/**
 * Training batches addressed by (epoch, index), as the trainer consumes them (in order, once each). A model
 * with its own batching (SequentialRetriever.trainingBatches) returns one; any randomness it draws must come
 * from the model's checkpointed random state so that a resumed run gets the same batches.
 */
export interface BatchSource {
  readonly batchesPerEpoch: number;
  batch(epoch: number, index: number): SequenceBatch;
}

/** The training sequences of one dataset, served as shuffled batches addressed by (epoch, index). */
export class TrainingBatches implements BatchSource {
  readonly sequences: number[][];
  readonly batchesPerEpoch: number;

  constructor(
    train: readonly (readonly number[])[],
    readonly opts: BatchSourceOptions,
  ) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
      throw new RangeError(`batchSize must be a positive integer, got ${opts.batchSize}`);
    }
    this.sequences = trainingSequences(train, opts.maxLen, opts.slidingWindow);
    if (this.sequences.length === 0)
      throw new RangeError("no training sequences: every user history is empty");
    this.batchesPerEpoch = Math.ceil(this.sequences.length / opts.batchSize);
  }

  private cachedEpoch = -1;
  private cachedOrder: Uint32Array = new Uint32Array(0);

  batch(epoch: number, index: number): SequenceBatch {
    if (index < 0 || index >= this.batchesPerEpoch) throw new RangeError(`batch index ${index} out of range`);
    if (epoch !== this.cachedEpoch) {
      this.cachedOrder = epochOrder(this.sequences.length, this.opts.seed, epoch);
      this.cachedEpoch = epoch;
    }
    const from = index * this.opts.batchSize;
    const to = Math.min(from + this.opts.batchSize, this.sequences.length);
    const seqs: number[][] = [];
    for (let i = from; i < to; i++) seqs.push(this.sequences[this.cachedOrder[i]!]!);
    return encodeTrainingBatch(seqs, this.opts.maxLen);
  }
}

export type EvalSplit = "val" | "test";

/** Users evaluated on a split (official: those whose held-out item(s) exist), ascending. */
export function evaluationUsers(dataset: Dataset, split: EvalSplit): number[] {
  const users: number[] = [];
  for (let u = 1; u <= dataset.numUsers; u++) {
    if ((dataset.val[u] ?? 0) <= 0) continue;
    if (split === "test" && (dataset.test[u] ?? 0) <= 0) continue;
    users.push(u);
  }
  return users;
}

/** Everything the model may see before the held-out item: train[u] (val) or train[u] + val[u] (test). */
export function evaluationHistory(dataset: Dataset, split: EvalSplit, user: number): number[] {
  const train = dataset.train[user] ?? [];
  return split === "val" ? [...train] : [...train, dataset.val[user]!];
}

export function evaluationLabel(dataset: Dataset, split: EvalSplit, user: number): number {
  return split === "val" ? dataset.val[user]! : dataset.test[user]!;
}

/** The last maxLen items of a history, left-padded with 0, into row `row` of `tokens`. */
export function encodeEvaluationRow(
  history: readonly number[],
  maxLen: number,
  tokens: Int32Array,
  row: number,
): void {
  const base = row * maxLen;
  tokens.fill(0, base, base + maxLen);
  const n = Math.min(history.length, maxLen);
  for (let i = 0; i < n; i++) tokens[base + maxLen - n + i] = history[history.length - n + i]!;
}
