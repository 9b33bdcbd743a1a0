/**
 * Shared bookkeeping of left-padded token batches for the attention retrievers (SASRec, BERT4Rec): where
 * each sequence's tokens start, and the packed rows the layers run on (with the official code's position ids).
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

/** torch's padding_idx: the padding row's gradient is dropped (its embedding stays as initialised). */
export function dropPaddingRowGrad(grad: Float32Array | null, dim: number): void {
  grad?.fill(0, 0, dim);
}

/**
 * A left-padded [B, L] batch packed to the rows that need computing: per sequence its tokens, preceded by
 * the padding positions that carry a label (SASRec's "first item from nothing" label sits just before the
 * history) — or, for a sequence with neither, its last position alone, so that every sequence has a row to
 * read out. Row-wise layers then skip the padding; attention sees the packed sequences through `offsets`, with
 * the leading padding rows of each sequence masked (`keyStart`, relative to the sequence's first row).
 */
export interface PackedBatch {
  /** [B + 1]: sequence b is packed rows offsets[b] … offsets[b+1] − 1. */
  offsets: Int32Array;
  /** Per sequence, how many of its leading rows are padding (masked keys, zero attention output). */
  keyStart: Int32Array;
  /** Per packed row, its index b·L + t in the [B, L] batch. */
  rows: Int32Array;
  /** Per packed row: its token and the authors' position id (1… from the first token, 0 on padding). */
  tokens: Int32Array;
  positions: Int32Array;
  /** Per sequence, the packed row of its last position (L − 1). */
  lastRows: Int32Array;
}

export function packBatch(
  tokens: Int32Array,
  batchSize: number,
  seqLen: number,
  labels?: Int32Array,
): PackedBatch {
  const start = firstTokenIndex(tokens, batchSize, seqLen);
  const first = new Int32Array(batchSize);
  const offsets = new Int32Array(batchSize + 1);
  for (let b = 0; b < batchSize; b++) {
    let f = Math.min(start[b]!, seqLen - 1);
    if (labels) for (let t = 0; t < f; t++) if (labels[b * seqLen + t]! !== 0) f = Math.min(f, t);
    first[b] = f;
    offsets[b + 1] = offsets[b]! + seqLen - f;
  }
  const N = offsets[batchSize]!;
  const rows = new Int32Array(N);
  const packedTokens = new Int32Array(N);
  const positions = new Int32Array(N);
  const keyStart = new Int32Array(batchSize);
  const lastRows = new Int32Array(batchSize);
  for (let b = 0; b < batchSize; b++) {
    const s = start[b]!;
    keyStart[b] = Math.min(s, seqLen) - first[b]!;
    for (let t = first[b]!, r = offsets[b]!; t < seqLen; t++, r++) {
      rows[r] = b * seqLen + t;
      packedTokens[r] = tokens[b * seqLen + t]!;
      positions[r] = t >= s ? t - s + 1 : 0;
    }
    lastRows[b] = offsets[b + 1]! - 1;
  }
  return { offsets, keyStart, rows, tokens: packedTokens, positions, lastRows };
}
