/**
 * Shared bookkeeping of left-padded token batches for the attention retrievers (SASRec, BERT4Rec): where
 * each sequence's tokens start, and the official code's position ids.
 */

/** Index of each row's first non-padding token (L when the row is all padding). Tokens must be a suffix. */
export function firstTokenIndex(tokens: Int32Array, batchSize: number, seqLen: number): Int32Array {
  if (tokens.length !== batchSize * seqLen)
    throw new RangeError(`${tokens.length} tokens for a ${batchSize}×${seqLen} batch`);
  const start = new Int32Array(batchSize);
  for (let b = 0; b < batchSize; b++) {
    let s = seqLen;
    for (let t = 0; t < seqLen; t++) {
      if (tokens[b * seqLen + t]! > 0) {
        s = t;
        break;
      }
    }
    for (let t = s; t < seqLen; t++) {
      if (tokens[b * seqLen + t]! <= 0)
        throw new RangeError(
          `row ${b}: padding at position ${t} after the first token (left padding expected)`,
        );
    }
    start[b] = s;
  }
  return start;
}

/**
 * Position ids as the authors' PositionalEmbedding computes them: a row's n tokens get 1…n from the first
 * token on, padding gets 0 (so positions count from the start of the history, not from the window's end).
 */
export function positionIds(start: Int32Array, seqLen: number): Int32Array {
  const ids = new Int32Array(start.length * seqLen);
  for (let b = 0; b < start.length; b++)
    for (let t = start[b]!; t < seqLen; t++) ids[b * seqLen + t] = t - start[b]! + 1;
  return ids;
}

/** torch's padding_idx: the padding row's gradient is dropped (its embedding stays as initialised). */
export function dropPaddingRowGrad(grad: Float32Array | null, dim: number): void {
  grad?.fill(0, 0, dim);
}
