/**
 * "pop": a learned item-popularity baseline. One weight, a bias per item; the score of the next item does
 * not depend on the sequence at all. Trained with the same loss as every retriever (softmax cross-entropy
 * over all items at every labelled position), so its optimum is log item frequency among training labels.
 * Two uses: an honest floor any sequential model must beat, and a fast model for trainer tests.
 */
import type { SequenceBatch, SequentialRetriever, WeightLike } from "./types.js";

export interface PopConfig {
  numItems: number;
}

class PopularityRetriever implements SequentialRetriever {
  readonly modelName = "pop";
  readonly config: Readonly<Record<string, unknown>>;
  readonly numItems: number;
  // Named "bias" so the optimizer's no-decay rule (substring "bias", as the official trainer) applies.
  private readonly bias: WeightLike;

  constructor(config: PopConfig) {
    if (!Number.isInteger(config.numItems) || config.numItems < 1) {
      throw new RangeError(`pop: numItems must be a positive integer, got ${config.numItems}`);
    }
    this.numItems = config.numItems;
    this.config = { numItems: config.numItems };
    const v = config.numItems + 1;
    this.bias = { name: "bias", shape: [v], data: new Float32Array(v), grad: null };
  }

  parameters(): WeightLike[] {
    return [this.bias];
  }

  setTraining(_training: boolean): void {
    // No dropout: training and inference are the same computation.
  }

  lossAndBackward(batch: SequenceBatch): number {
    const v = this.numItems + 1;
    const b = this.bias.data;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < v; i++) if (b[i]! > max) max = b[i]!;
    let sum = 0;
    for (let i = 0; i < v; i++) sum += Math.exp(b[i]! - max);
    const logZ = max + Math.log(sum);

    const labelCounts = new Float64Array(v);
    let count = 0;
    for (const label of batch.labels) {
      if (label === 0) continue;
      if (label < 0 || label >= v)
        throw new RangeError(`pop: label ${label} outside items 1..${this.numItems}`);
      labelCounts[label]!++;
      count++;
    }
    if (count === 0) return 0;

    let loss = 0;
    for (let i = 1; i < v; i++) if (labelCounts[i]! > 0) loss += labelCounts[i]! * (logZ - b[i]!);
    // d(mean CE)/d bias = softmax(bias) − label frequency in this batch.
    if (this.bias.grad === null) this.bias.grad = new Float32Array(v);
    const g = this.bias.grad;
    for (let i = 0; i < v; i++) g[i]! += Math.exp(b[i]! - logZ) - labelCounts[i]! / count;
    return loss / count;
  }

  scoreNext(_tokens: Int32Array, batchSize: number, _seqLen: number): Float32Array {
    const v = this.numItems + 1;
    const out = new Float32Array(batchSize * v);
    for (let r = 0; r < batchSize; r++) out.set(this.bias.data, r * v);
    return out;
  }
}

export function createPop(config: PopConfig): SequentialRetriever {
  return new PopularityRetriever(config);
}
