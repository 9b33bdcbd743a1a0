/**
 * The kernel contract: the only place where time goes. Every array is float32, row-major, contiguous.
 * Ops (src/tensor/ops) call these; models never do. Backends: `reference` (plain JS, the oracle for tests)
 * and `wasm` (SIMD, optionally split across worker threads).
 */
export interface Kernels {
  readonly name: string;

  /**
   * C[M×N] = alpha · op(A) · op(B) + beta · C, where op(A) is M×K (A stored K×M when transA),
   * op(B) is K×N (B stored N×K when transB). beta = 0 must ignore what C held (even NaN).
   */
  gemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: Float32Array,
    B: Float32Array,
    beta: number,
    C: Float32Array,
  ): void;

  /**
   * Fused output layer + softmax cross-entropy, logits never materialised whole:
   * logits[n, v] = H[n]·W[v] + bias[v]; loss = Σ_{n: labels[n] != ignoreIndex} −log softmax(logits[n])[labels[n]].
   * Returns the summed loss and the count of labelled rows. When grads are given, writes
   * dH = ∂(loss/count)/∂H (overwritten, zero on ignored rows) and *accumulates* into dW and dBias.
   */
  linearCrossEntropy(args: {
    H: Float32Array;
    W: Float32Array;
    bias: Float32Array | null;
    labels: Int32Array;
    N: number;
    D: number;
    V: number;
    ignoreIndex: number;
    dH?: Float32Array;
    dW?: Float32Array;
    dBias?: Float32Array;
  }): { loss: number; count: number };

  /** y = (x − mean)·rstd·gamma + beta per row of length `cols`; saves mean and rstd per row. */
  layerNormForward(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    rows: number,
    cols: number,
    eps: number,
    y: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
  ): void;

  /** dx overwritten; dGamma and dBeta accumulated. */
  layerNormBackward(
    dy: Float32Array,
    x: Float32Array,
    gamma: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    rows: number,
    cols: number,
    dx: Float32Array,
    dGamma: Float32Array,
    dBeta: Float32Array,
  ): void;

  /** Exact (erf) GELU, as torch.nn.GELU(). */
  geluForward(x: Float32Array, y: Float32Array): void;
  /** dx = dy · GELU'(x), overwritten. */
  geluBackward(dy: Float32Array, x: Float32Array, dx: Float32Array): void;

  /** out[i, :] = table[ids[i], :] for rows of width `dim`. */
  embeddingGather(table: Float32Array, ids: Int32Array, dim: number, out: Float32Array): void;
  /** dTable[ids[i], :] += dOut[i, :]. */
  embeddingScatterAdd(dOut: Float32Array, ids: Int32Array, dim: number, dTable: Float32Array): void;

  /**
   * Optional: hold(true) … hold(false) brackets a burst of calls (a training step, a validation pass; nestable).
   * A backend with a helper thread keeps it polling for calls during the window instead of sleeping between
   * them, and splits smaller calls; results are the same bits either way. Use `whileHeld` (./hold.ts), which
   * releases on exceptions.
   */
  hold?(on: boolean): void;

  /**
   * Optional: a zeroed buffer in the backend's own memory that kernel calls use in place (no copies in or
   * out). The backend never reuses it; the caller owns it for good (src/tensor/memory.ts recycles them).
   */
  resident?(n: number): Float32Array;

  /**
   * Optional: out[rows×outF] = x[rows×inF]·weightᵀ + bias on every row (torch's linear), bit for bit what filling
   * `out` with the bias rows and then gemm(false, true, rows, outF, inF, 1, x, weight, 1, out) gives.
   */
  linearForward?(
    x: Float32Array,
    weight: Float32Array,
    bias: Float32Array,
    rows: number,
    inF: number,
    outF: number,
    out: Float32Array,
  ): void;

  /** Optional: out = a + sign·b (sign ±1), element-wise over equal lengths, float32 rounding. */
  addScaled?(a: Float32Array, b: Float32Array, sign: 1 | -1, out: Float32Array): void;

  /** Optional: gb[0:cols) += column sums of g [rows × cols], rows in order (float32 adds, as a JS loop). */
  addColumnSums?(g: Float32Array, rows: number, cols: number, gb: Float32Array): void;

  /**
   * Optional: inverted dropout with the generator of src/tensor/rng.ts, bit for bit Rng.applyDropout
   * (mode 0: dst = dropout(src); 1: dst += dropout(src)) and Rng.applyDropoutAdd (mode 2: dst =
   * dropout(src) + addend). `state` (Rng.getState() words) is advanced in place. dst may be src.
   */
  dropout?(
    src: Float32Array,
    dst: Float32Array,
    addend: Float32Array | null,
    p: number,
    mode: 0 | 1 | 2,
    state: number[],
  ): void;

  /**
   * Optional: the LRU's diagonal complex recurrence in its sequential form (see
   * src/tensor/ops/linear_recurrence.ts; rows packed [re(0..C) | im(0..C)], C even), bit for bit the JS loops:
   * h_t += λ·h_{t−1} where mask[t−1] != 0, in place, for the sequences with run[s] = 1.
   */
  recurrenceForward?(h: Float32Array, lambda: Float32Array, seqs: RecurrenceSequences, C: number): void;
  /**
   * Optional: its backward, in place on g (the output gradient on entry, the input gradient on return);
   * gLam (float64) += ∂/∂λ, summed in the JS order. h is the forward output.
   */
  recurrenceBackward?(
    g: Float32Array,
    h: Float32Array,
    lambda: Float32Array,
    seqs: RecurrenceSequences,
    C: number,
    gLam: Float64Array,
  ): void;

  /**
   * Optional: one AdamW step of every parameter in one call, bit for bit the JS loop of src/tensor/optim/adamw.ts
   * (float64 arithmetic, each moment's unrounded new value used in the update).
   */
  adamw?(
    params: readonly AdamWParam[],
    hyper: { oneMinusBeta1: number; beta2: number; oneMinusBeta2: number; eps: number },
  ): void;
}

/** One parameter of an AdamW step (see src/tensor/optim/adamw.ts for the formula). */
export interface AdamWParam {
  readonly p: Float32Array;
  readonly grad: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  readonly decayFactor: number;
  readonly stepSize: number;
  readonly bc2Sqrt: number;
}

/** Sequence s owns rows [rowStart[s], rowStart[s] + length[s]); mask has one entry per row. */
export interface RecurrenceSequences {
  readonly rowStart: Int32Array;
  readonly length: Int32Array;
  readonly mask: Uint8Array;
  /** 1 for the sequences to process. */
  readonly run: Uint8Array;
}
