import type { Dataset } from "../../src/data/dataset.js";
import type { SequenceBatch, SequentialRetriever, WeightLike } from "../../src/retrievers/types.js";

/** A Dataset from per-user full sequences: the last two items become val and test (leave-one-out). */
export function datasetFromSequences(name: string, numItems: number, sequences: number[][]): Dataset {
  const numUsers = sequences.length;
  const train: number[][] = [[]];
  const val: number[] = [0];
  const test: number[] = [0];
  for (const seq of sequences) {
    train.push(seq.slice(0, -2));
    val.push(seq[seq.length - 2] ?? 0);
    test.push(seq[seq.length - 1] ?? 0);
  }
  const titles = ["", ...Array.from({ length: numItems }, (_, i) => `Item ${i + 1}`)];
  return {
    name,
    numUsers,
    numItems,
    train,
    val,
    test,
    titles,
    userIds: ["", ...sequences.map((_, u) => `u${u + 1}`)],
    itemIds: ["", ...Array.from({ length: numItems }, (_, i) => `i${i + 1}`)],
  };
}

/** Deterministic pseudo-random sequences with a popularity skew (small ids are frequent). */
export function skewedDataset(
  numUsers: number,
  numItems: number,
  minLen: number,
  maxLen: number,
  seed = 1,
): Dataset {
  let s = seed >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const sequences: number[][] = [];
  for (let u = 0; u < numUsers; u++) {
    const len = minLen + Math.floor(rand() * (maxLen - minLen + 1));
    const seq: number[] = [];
    while (seq.length < len) {
      const item = 1 + Math.floor(numItems * rand() ** 2);
      if (!seq.includes(item)) seq.push(item);
    }
    sequences.push(seq);
  }
  return datasetFromSequences("synthetic-skewed", numItems, sequences);
}

/**
 * A model whose validation Recall@10 follows a script: after `steps` optimizer steps it puts the label of
 * the first round(quality(steps) × users) users on top and scores everything else 0. Its state lives in
 * its weights ("*_bias" names: no weight decay, zero grads: Adam leaves them alone), so best-weight
 * restoring and checkpoints work as for a real model. Needs the `disjointDataset` layout.
 */
export function createScriptedModel(
  numItems: number,
  numUsers: number,
  quality: (steps: number) => number,
): SequentialRetriever {
  const state: WeightLike = { name: "state_bias", shape: [2], data: new Float32Array(2), grad: null };
  state.data[0] = quality(0);
  return {
    modelName: "scripted",
    config: { numItems, numUsers },
    numItems,
    parameters: () => [state],
    setTraining: () => {},
    lossAndBackward(_batch: SequenceBatch): number {
      state.grad ??= new Float32Array(2);
      const steps = state.data[1]! + 1;
      state.data[1] = steps;
      state.data[0] = quality(steps);
      return 1;
    },
    scoreNext(tokens: Int32Array, batchSize: number, seqLen: number): Float32Array {
      const out = new Float32Array(batchSize * (numItems + 1));
      const boosted = Math.round(state.data[0]! * numUsers);
      for (let b = 0; b < batchSize; b++) {
        const last = tokens[b * seqLen + seqLen - 1]!;
        // disjointDataset: user u owns items 3u-2 (train), 3u-1 (val), 3u (test); the next one is last + 1.
        const user = Math.ceil(last / 3);
        if (user <= boosted) out[b * (numItems + 1) + last + 1] = 1;
      }
      return out;
    },
  };
}

/** User u's sequence is [3u−2, 3u−1, 3u]: train = one item, val and test the next two. */
export function disjointDataset(numUsers: number): Dataset {
  return datasetFromSequences(
    "disjoint",
    3 * numUsers,
    Array.from({ length: numUsers }, (_, i) => [3 * i + 1, 3 * i + 2, 3 * i + 3]),
  );
}
