import type { BatchSource, BatchSourceOptions } from "./batches.js";

/**
 * The contract between a sequential retriever model (one file per model, e.g. lru.ts) and the code that
 * trains, checkpoints and evaluates it (trainer.ts, candidates.ts). Models are written on src/tensor.
 */

/** B sequences of length L, left-padded with 0. labels[b, t] is the target at position t; 0 = no label. */
export interface SequenceBatch {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly tokens: Int32Array;
  readonly labels: Int32Array;
}

import type { WeightLike } from "../tensor/weight.js";

export type { WeightLike };

export interface SequentialRetriever {
  /** Registry name, e.g. "lru". */
  readonly modelName: string;
  /** Everything needed to rebuild the model (written to model.json beside the weights). */
  readonly config: Readonly<Record<string, unknown>>;
  readonly numItems: number;
  /** Trainable weights, stable order and names (checkpoint keys). */
  parameters(): WeightLike[];
  setTraining(training: boolean): void;
  /** Forward + backward on one batch: cross-entropy over all items at every labelled position, mean over
   * labelled positions. Gradients are accumulated into parameters' grad. Returns the loss. */
  lossAndBackward(batch: SequenceBatch): number;
  /** Scores of every item (index 0 = padding, ignore it) as the next item after each sequence's last
   * position: [batchSize × (numItems + 1)]. Runs in inference mode (no dropout, no tape). */
  scoreNext(tokens: Int32Array, batchSize: number, seqLen: number): Float32Array;
  /** Optional: the state of the model's own random stream (dropout), checkpointed so that a resumed
   * training run draws the same dropout masks as an uninterrupted one. Models without randomness omit it. */
  getRandomState?(): number[];
  /**
   * Optional batching hook: the model's own training batches (BERT4Rec's cloze masking, NARM's prefixes);
   * default: the shared windows (TrainingBatches). Randomness must come from the state of getRandomState.
   */
  trainingBatches?(train: readonly (readonly number[])[], opts: BatchSourceOptions): BatchSource;
  setRandomState?(state: readonly number[]): void;
}
