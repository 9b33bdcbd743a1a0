import { kernels } from "../kernels/index.js";
import { allocFloat32, allocFloat32Unset } from "../memory.js";
import type { Rng } from "../rng.js";
import { needsGrad, record } from "../tape.js";
import { Tensor } from "../tensor.js";

export interface MultiHeadAttentionOptions {
  heads: number;
  /** Causal (query t sees keys ≤ t, SASRec) or bidirectional (every valid key, BERT4Rec). */
  causal: boolean;
  /**
   * Packed sequences: q, k, v are [N, width] and sequence b is rows offsets[b] … offsets[b+1] − 1
   * (offsets [B + 1], ascending from 0 to N). Default: [B, L, width], sequence b is row block b.
   */
  offsets?: Int32Array;
  /**
   * Padding mask: the first keyStart[b] rows of sequence b (left padding) are invisible keys and their
   * queries output zeros. Default: no padding. A query that sees no key (a causal query inside the padding)
   * outputs zeros.
   */
  keyStart?: Int32Array;
  /** Dropout on the attention weights (after softmax), as torch's MultiHeadedAttention; 0 = none. */
  dropout?: number;
  /** Required when dropout > 0. */
  rng?: Rng;
  /** Causal attention's query-row block size (default 32; results do not depend on it beyond rounding). */
  blockRows?: number;
}

/**
 * Batched multi-head scaled dot-product attention, fused per (sequence, head):
 *   out[b, t, h] = Σ_j dropout(softmax_j(q[b,t,h]·k[b,j,h] / √dₕ + mask)) · v[b,j,h]
 * q, k, v: [B, L, heads·dₕ] (heads side by side in the last dim, as `linear` produces them) → [B, L, heads·dₕ],
 * or packed sequences of any lengths [N, heads·dₕ] → [N, heads·dₕ] (`offsets`).
 *
 * Only the valid block is computed: per sequence the rows and keys from keyStart[b] on (left padding costs
 * nothing); padded query rows output 0. Causal attention is computed in blocks of `blockRows` query rows, each
 * against the keys up to its last row only (about half the work of the full square); the softmax weights of
 * those blocks are kept for the backward pass. Attention dropout draws one number per computed weight (the
 * causal blocks' weights, in block order) and the backward pass reads the mask off the kept weights (a weight
 * that survived is non-zero), so nothing is replayed. All products go through kernels().gemm.
 */
export function multiHeadAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: MultiHeadAttentionOptions,
): Tensor {
  const { heads, causal } = options;
  const p = options.dropout ?? 0;
  const packed = options.offsets !== undefined;
  const rank = packed ? 2 : 3;
  if (q.rank !== rank || k.rank !== rank || v.rank !== rank)
    throw new RangeError(
      `multiHeadAttention: expected ${packed ? "[N, width] (packed)" : "[B, L, width]"}, got [${q.shape}], [${k.shape}], [${v.shape}]`,
    );
  for (const t of [k, v]) {
    if (t.shape.some((x, i) => x !== q.shape[i]))
      throw new RangeError(`multiHeadAttention: shapes [${q.shape}], [${k.shape}], [${v.shape}] differ`);
  }
  const W = q.shape[rank - 1]!;
  // Sequence b: rows base[b] … base[b] + len[b] − 1 of the [rows, W] data.
  let B: number;
  let base: Int32Array;
  let len: Int32Array;
  if (options.offsets) {
    const off = options.offsets;
    B = off.length - 1;
    if (B < 0 || off[0] !== 0 || off[B] !== q.dim(0))
      throw new RangeError(`multiHeadAttention: offsets must run from 0 to ${q.dim(0)}`);
    base = off.subarray(0, B);
    len = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      len[b] = off[b + 1]! - off[b]!;
      if (len[b]! < 0) throw new RangeError("multiHeadAttention: offsets must not decrease");
    }
  } else {
    B = q.dim(0);
    const L = q.dim(1);
    base = Int32Array.from({ length: B }, (_, b) => b * L);
    len = new Int32Array(B).fill(L);
  }
  if (!Number.isInteger(heads) || heads < 1 || W % heads !== 0)
    throw new RangeError(`multiHeadAttention: width ${W} is not divisible by ${heads} heads`);
  if (!(p >= 0 && p < 1)) throw new RangeError(`multiHeadAttention: dropout must be in [0, 1), got ${p}`);
  if (p > 0 && !options.rng) throw new RangeError("multiHeadAttention: dropout needs an rng");
  const keyStart = options.keyStart ?? new Int32Array(B);
  if (keyStart.length !== B)
    throw new RangeError(`multiHeadAttention: keyStart has ${keyStart.length} ≠ ${B}`);
  let maxN = 0;
  for (let b = 0; b < B; b++) {
    const s = keyStart[b]!;
    if (!(Number.isInteger(s) && s >= 0 && s <= len[b]!))
      throw new RangeError(`multiHeadAttention: keyStart[${b}] = ${s} outside [0, ${len[b]}]`);
    maxN = Math.max(maxN, len[b]! - s);
  }
  const blockRows = options.blockRows ?? 32;
  if (!(Number.isInteger(blockRows) && blockRows >= 1))
    throw new RangeError(`multiHeadAttention: blockRows must be a positive integer, got ${blockRows}`);
  const T = causal ? blockRows : maxN;
  const d = W / heads;
  const scale = 1 / Math.sqrt(d);
  const dropScale = p > 0 ? 1 / (1 - p) : 1;
  const gemm = kernels().gemm;

  // Weights of one (b, h): blocks r = 0, 1, … of rows [rT, min(n, rT + T)) × keys [0, w), w = the block's
  // last row + 1 (causal) or n (bidirectional), stored one after the other.
  const span = (n: number) => {
    if (!causal) return n * n;
    let s = 0;
    for (let i0 = 0; i0 < n; i0 += T) {
      const i1 = Math.min(n, i0 + T);
      s += (i1 - i0) * i1;
    }
    return s;
  };
  const pOffset = new Int32Array(B * heads + 1);
  for (let b = 0; b < B; b++) {
    const size = span(len[b]! - keyStart[b]!);
    for (let h = 0; h < heads; h++) pOffset[b * heads + h + 1] = pOffset[b * heads + h]! + size;
  }
  const P = allocFloat32Unset(pOffset[B * heads]!); // softmax weights
  const Pd = p > 0 ? allocFloat32Unset(P.length) : P; // after dropout
  const out = allocFloat32(q.size);
  const Qh = new Float32Array(maxN * d);
  const Kh = new Float32Array(maxN * d);
  const Vh = new Float32Array(maxN * d);
  const Oh = new Float32Array(maxN * d);

  for (let b = 0; b < B; b++) {
    const row0 = base[b]! + keyStart[b]!;
    const n = len[b]! - keyStart[b]!;
    if (n === 0) continue;
    for (let h = 0; h < heads; h++) {
      gather(q.data, row0, n, W, h * d, d, Qh);
      gather(k.data, row0, n, W, h * d, d, Kh);
      gather(v.data, row0, n, W, h * d, d, Vh);
      let off = pOffset[b * heads + h]!;
      for (let i0 = 0; i0 < n; i0 += T) {
        const i1 = Math.min(n, i0 + T);
        const m = i1 - i0;
        const w = causal ? i1 : n;
        const S = P.subarray(off, off + m * w);
        gemm(false, true, m, w, d, scale, Qh.subarray(i0 * d, i1 * d), Kh.subarray(0, w * d), 0, S);
        for (let r = 0; r < m; r++) {
          const o = r * w;
          const last = o + (causal ? i0 + r : w - 1);
          let max = -Infinity;
          for (let j = o; j <= last; j++) if (S[j]! > max) max = S[j]!;
          let sum = 0;
          for (let j = o; j <= last; j++) {
            const e = Math.exp(S[j]! - max);
            S[j] = e;
            sum += e;
          }
          const inv = 1 / sum;
          for (let j = o; j <= last; j++) S[j] = S[j]! * inv;
          S.fill(0, last + 1, o + w);
        }
        let A = S;
        if (p > 0) {
          A = Pd.subarray(off, off + m * w);
          options.rng!.applyDropout(S, A, p, false);
        }
        gemm(false, false, m, d, w, 1, A, Vh.subarray(0, w * d), 0, Oh.subarray(i0 * d, i1 * d));
        off += m * w;
      }
      scatter(Oh, row0, n, W, h * d, d, out, false);
    }
  }

  const t = new Tensor(out, q.shape);
  if (needsGrad(q, k, v)) {
    record(t, (g) => {
      const dOh = new Float32Array(maxN * d);
      const dQh = new Float32Array(maxN * d);
      const dKh = new Float32Array(maxN * d);
      const dVh = new Float32Array(maxN * d);
      const dA = new Float32Array(T * maxN);
      const dS = new Float32Array(T * maxN);
      const gq = q.requiresGrad ? q.gradBuffer() : null;
      const gk = k.requiresGrad ? k.gradBuffer() : null;
      const gv = v.requiresGrad ? v.gradBuffer() : null;
      for (let b = 0; b < B; b++) {
        const row0 = base[b]! + keyStart[b]!;
        const n = len[b]! - keyStart[b]!;
        if (n === 0) continue;
        const nd = n * d;
        for (let h = 0; h < heads; h++) {
          const c0 = h * d;
          gather(g, row0, n, W, c0, d, dOh);
          gather(q.data, row0, n, W, c0, d, Qh);
          gather(k.data, row0, n, W, c0, d, Kh);
          gather(v.data, row0, n, W, c0, d, Vh);
          dKh.fill(0, 0, nd);
          dVh.fill(0, 0, nd);
          let off = pOffset[b * heads + h]!;
          for (let i0 = 0; i0 < n; i0 += T) {
            const i1 = Math.min(n, i0 + T);
            const m = i1 - i0;
            const w = causal ? i1 : n;
            const mw = m * w;
            const S = P.subarray(off, off + mw);
            const A = Pd.subarray(off, off + mw);
            off += mw;
            const dO = dOh.subarray(i0 * d, i1 * d);
            // dV[0, w) += Aᵀ·dO; dA = dO·Vᵀ
            if (gv) gemm(true, false, w, d, m, 1, A, dO, 1, dVh.subarray(0, w * d));
            if (!gq && !gk) continue;
            gemm(false, true, m, w, d, 1, dO, Vh.subarray(0, w * d), 0, dA);
            // Softmax backward, scaled: dS = P ⊙ (dP − Σⱼ P·dP) / √d (zero where P is, i.e. masked keys).
            // Dropout backward from the kept weights: survivors are non-zero (a weight that is 0 before dropout
            // gets no gradient below, whatever its mask was).
            for (let r = 0; r < m; r++) {
              const o = r * w;
              const last = o + (causal ? i0 + r : w - 1);
              let dot = 0;
              if (p > 0) {
                for (let j = o; j <= last; j++) {
                  const dp = A[j] !== 0 ? dA[j]! * dropScale : 0;
                  dA[j] = dp;
                  dot += S[j]! * dp;
                }
              } else {
                for (let j = o; j <= last; j++) dot += S[j]! * dA[j]!;
              }
              for (let j = o; j <= last; j++) dS[j] = S[j]! * (dA[j]! - dot) * scale;
              dS.fill(0, last + 1, o + w);
            }
            if (gq)
              gemm(false, false, m, d, w, 1, dS, Kh.subarray(0, w * d), 0, dQh.subarray(i0 * d, i1 * d));
            if (gk) gemm(true, false, w, d, m, 1, dS, Qh.subarray(i0 * d, i1 * d), 1, dKh.subarray(0, w * d));
          }
          if (gv) scatter(dVh, row0, n, W, c0, d, gv, true);
          if (gq) scatter(dQh, row0, n, W, c0, d, gq, true);
          if (gk) scatter(dKh, row0, n, W, c0, d, gk, true);
        }
      }
    });
  }
  return t;
}

/** Columns c0 … c0 + d − 1 of rows row0 … row0 + n − 1 of a [rows, W] matrix into a contiguous [n, d] buffer. */
function gather(
  src: Float32Array,
  row0: number,
  n: number,
  W: number,
  c0: number,
  d: number,
  dst: Float32Array,
): void {
  for (let t = 0; t < n; t++) {
    const o = (row0 + t) * W + c0;
    const r = t * d;
    for (let i = 0; i < d; i++) dst[r + i] = src[o + i]!;
  }
}

/** The inverse of gather (dst written, or accumulated into). */
function scatter(
  src: Float32Array,
  row0: number,
  n: number,
  W: number,
  c0: number,
  d: number,
  dst: Float32Array,
  accumulate: boolean,
): void {
  for (let t = 0; t < n; t++) {
    const o = (row0 + t) * W + c0;
    const r = t * d;
    if (accumulate) for (let i = 0; i < d; i++) dst[o + i] = dst[o + i]! + src[r + i]!;
    else for (let i = 0; i < d; i++) dst[o + i] = src[r + i]!;
  }
}

/**
 * Attention pooling over ragged segments (NARM's local encoder): rows offsets[s] … offsets[s+1]−1 form
 * segment s, and out[s] = Σᵢ softmaxᵢ(scores[i]) · values[i] over the segment's rows (an empty segment gives
 * 0). scores [N] or [N, 1], values [N, D], offsets [S + 1] ascending from 0 to N → [S, D].
 */
export function attentionPool(scores: Tensor, values: Tensor, offsets: Int32Array): Tensor {
  if (values.rank !== 2) throw new RangeError(`attentionPool: values must be [N, D], got [${values.shape}]`);
  const [N, D] = values.shape as [number, number];
  if (scores.size !== N) throw new RangeError(`attentionPool: ${scores.size} scores for ${N} rows`);
  const S = offsets.length - 1;
  if (S < 0 || offsets[0] !== 0 || offsets[S] !== N)
    throw new RangeError(`attentionPool: offsets must run from 0 to ${N}`);
  for (let s = 0; s < S; s++)
    if (offsets[s + 1]! < offsets[s]!) throw new RangeError("attentionPool: offsets must not decrease");
  const e = scores.data;
  const x = values.data;
  const a = allocFloat32(N);
  const out = allocFloat32(S * D);
  for (let s = 0; s < S; s++) {
    const r0 = offsets[s]!;
    const r1 = offsets[s + 1]!;
    if (r1 === r0) continue;
    let max = -Infinity;
    for (let i = r0; i < r1; i++) if (e[i]! > max) max = e[i]!;
    let sum = 0;
    for (let i = r0; i < r1; i++) {
      a[i] = Math.exp(e[i]! - max);
      sum += a[i]!;
    }
    for (let i = r0; i < r1; i++) {
      const w = a[i]! / sum;
      a[i] = w;
      for (let j = 0; j < D; j++) out[s * D + j] = out[s * D + j]! + w * x[i * D + j]!;
    }
  }
  const t = new Tensor(out, [S, D]);
  if (needsGrad(scores, values)) {
    record(t, (g) => {
      const ge = scores.requiresGrad ? scores.gradBuffer() : null;
      const gx = values.requiresGrad ? values.gradBuffer() : null;
      for (let s = 0; s < S; s++) {
        const r0 = offsets[s]!;
        const r1 = offsets[s + 1]!;
        if (gx)
          for (let i = r0; i < r1; i++)
            for (let j = 0; j < D; j++) gx[i * D + j] = gx[i * D + j]! + a[i]! * g[s * D + j]!;
        if (!ge) continue;
        let dot = 0;
        const da = new Float64Array(r1 - r0);
        for (let i = r0; i < r1; i++) {
          let v = 0;
          for (let j = 0; j < D; j++) v += g[s * D + j]! * x[i * D + j]!;
          da[i - r0] = v;
          dot += a[i]! * v;
        }
        for (let i = r0; i < r1; i++) ge[i] = ge[i]! + a[i]! * (da[i - r0]! - dot);
      }
    });
  }
  return t;
}
