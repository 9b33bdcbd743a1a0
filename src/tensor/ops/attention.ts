import { kernels } from "../kernels/index.js";
import { allocFloat32 } from "../memory.js";
import { Rng } from "../rng.js";
import { needsGrad, record } from "../tape.js";
import { Tensor } from "../tensor.js";

export interface MultiHeadAttentionOptions {
  heads: number;
  /** Causal (query t sees keys ≤ t, SASRec) or bidirectional (every valid key, BERT4Rec). */
  causal: boolean;
  /**
   * Padding mask of left-padded sequences: keys at positions < keyStart[b] are padding and invisible.
   * Default: no padding. A query that sees no key (a causal query inside the padding) outputs zeros.
   */
  keyStart?: Int32Array;
  /** Dropout on the attention weights (after softmax), as torch's MultiHeadedAttention; 0 = none. */
  dropout?: number;
  /** Required when dropout > 0. */
  rng?: Rng;
}

/**
 * Batched multi-head scaled dot-product attention, fused per (sequence, head):
 *   out[b, t, h] = Σ_j dropout(softmax_j(q[b,t,h]·k[b,j,h] / √dₕ + mask)) · v[b,j,h]
 * q, k, v: [B, L, heads·dₕ] (heads side by side in the last dim, as `linear` produces them) → [B, L, heads·dₕ].
 *
 * Only the valid block is computed: per sequence the rows and keys from keyStart[b] on (left padding costs
 * nothing); padded query rows output 0. Both products go through kernels().gemm; the softmax weights are kept
 * for the backward pass (B·heads·L'² floats) and the dropout mask is replayed from the saved generator state.
 */
export function multiHeadAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: MultiHeadAttentionOptions,
): Tensor {
  const { heads, causal } = options;
  const p = options.dropout ?? 0;
  if (q.rank !== 3 || k.rank !== 3 || v.rank !== 3)
    throw new RangeError(
      `multiHeadAttention: expected [B, L, width], got [${q.shape}], [${k.shape}], [${v.shape}]`,
    );
  const [B, L, W] = q.shape as [number, number, number];
  for (const t of [k, v]) {
    if (t.dim(0) !== B || t.dim(1) !== L || t.dim(2) !== W)
      throw new RangeError(`multiHeadAttention: shapes [${q.shape}], [${k.shape}], [${v.shape}] differ`);
  }
  if (!Number.isInteger(heads) || heads < 1 || W % heads !== 0)
    throw new RangeError(`multiHeadAttention: width ${W} is not divisible by ${heads} heads`);
  if (!(p >= 0 && p < 1)) throw new RangeError(`multiHeadAttention: dropout must be in [0, 1), got ${p}`);
  if (p > 0 && !options.rng) throw new RangeError("multiHeadAttention: dropout needs an rng");
  const keyStart = options.keyStart ?? new Int32Array(B);
  if (keyStart.length !== B)
    throw new RangeError(`multiHeadAttention: keyStart has ${keyStart.length} ≠ ${B}`);
  for (let b = 0; b < B; b++) {
    const s = keyStart[b]!;
    if (!(Number.isInteger(s) && s >= 0 && s <= L))
      throw new RangeError(`multiHeadAttention: keyStart[${b}] = ${s} outside [0, ${L}]`);
  }
  const d = W / heads;
  const scale = 1 / Math.sqrt(d);
  const gemm = kernels().gemm;

  // Offsets of each (b, h) block of weights in one buffer.
  const pOffset = new Int32Array(B * heads + 1);
  for (let b = 0; b < B; b++) {
    const n = L - keyStart[b]!;
    for (let h = 0; h < heads; h++) pOffset[b * heads + h + 1] = pOffset[b * heads + h]! + n * n;
  }
  const P = allocFloat32(pOffset[B * heads]!); // softmax weights
  const Pd = p > 0 ? allocFloat32(P.length) : P; // after dropout
  const dropStates: number[][] = [];
  const out = allocFloat32(B * L * W);
  const maxN = L;
  const Qh = new Float32Array(maxN * d);
  const Kh = new Float32Array(maxN * d);
  const Vh = new Float32Array(maxN * d);
  const Oh = new Float32Array(maxN * d);

  for (let b = 0; b < B; b++) {
    const s0 = keyStart[b]!;
    const n = L - s0;
    if (n === 0) continue;
    for (let h = 0; h < heads; h++) {
      gather(q.data, b, L, W, h, d, s0, Qh);
      gather(k.data, b, L, W, h, d, s0, Kh);
      gather(v.data, b, L, W, h, d, s0, Vh);
      const off = pOffset[b * heads + h]!;
      const S = P.subarray(off, off + n * n);
      gemm(false, true, n, n, d, scale, Qh.subarray(0, n * d), Kh.subarray(0, n * d), 0, S);
      for (let i = 0; i < n; i++) {
        const row = S.subarray(i * n, (i + 1) * n);
        const last = causal ? i : n - 1;
        let max = -Infinity;
        for (let j = 0; j <= last; j++) if (row[j]! > max) max = row[j]!;
        let sum = 0;
        for (let j = 0; j <= last; j++) {
          const e = Math.exp(row[j]! - max);
          row[j] = e;
          sum += e;
        }
        const inv = 1 / sum;
        for (let j = 0; j <= last; j++) row[j] = row[j]! * inv;
        row.fill(0, last + 1);
      }
      let A = S;
      if (p > 0) {
        dropStates.push(options.rng!.getState());
        A = Pd.subarray(off, off + n * n);
        options.rng!.applyDropout(S, A, p, false);
      }
      gemm(false, false, n, d, n, 1, A, Vh.subarray(0, n * d), 0, Oh);
      scatter(Oh, b, L, W, h, d, s0, out, false);
    }
  }

  const t = new Tensor(out, [B, L, W]);
  if (needsGrad(q, k, v)) {
    record(t, (g) => {
      const dOh = new Float32Array(maxN * d);
      const dQh = new Float32Array(maxN * d);
      const dKh = new Float32Array(maxN * d);
      const dVh = new Float32Array(maxN * d);
      const dA = new Float32Array(maxN * maxN);
      const dS = new Float32Array(maxN * maxN);
      const gq = q.requiresGrad ? q.gradBuffer() : null;
      const gk = k.requiresGrad ? k.gradBuffer() : null;
      const gv = v.requiresGrad ? v.gradBuffer() : null;
      const replay = new Rng(0);
      let drop = 0;
      for (let b = 0; b < B; b++) {
        const s0 = keyStart[b]!;
        const n = L - s0;
        if (n === 0) continue;
        const nd = n * d;
        const nn = n * n;
        for (let h = 0; h < heads; h++) {
          const off = pOffset[b * heads + h]!;
          const S = P.subarray(off, off + nn);
          const A = Pd.subarray(off, off + nn);
          gather(g, b, L, W, h, d, s0, dOh);
          gather(q.data, b, L, W, h, d, s0, Qh);
          gather(k.data, b, L, W, h, d, s0, Kh);
          gather(v.data, b, L, W, h, d, s0, Vh);
          // dV = Aᵀ·dO, dA = dO·Vᵀ
          if (gv) {
            gemm(true, false, n, d, n, 1, A, dOh.subarray(0, nd), 0, dVh);
            scatter(dVh, b, L, W, h, d, s0, gv, true);
          }
          if (!gq && !gk) continue;
          gemm(false, true, n, n, d, 1, dOh.subarray(0, nd), Vh.subarray(0, nd), 0, dA);
          let dP = dA;
          if (p > 0) {
            replay.setState(dropStates[drop++]!);
            replay.applyDropout(dA.subarray(0, nn), dS, p, false);
            dP = dS;
          }
          // Softmax backward, scaled: dS = P ⊙ (dP − Σⱼ P·dP) / √d (zero where P is, i.e. masked keys).
          for (let i = 0; i < n; i++) {
            const o = i * n;
            let dot = 0;
            for (let j = 0; j < n; j++) dot += S[o + j]! * dP[o + j]!;
            for (let j = 0; j < n; j++) dS[o + j] = S[o + j]! * (dP[o + j]! - dot) * scale;
          }
          if (gq) {
            gemm(false, false, n, d, n, 1, dS, Kh.subarray(0, nd), 0, dQh);
            scatter(dQh, b, L, W, h, d, s0, gq, true);
          }
          if (gk) {
            gemm(true, false, n, d, n, 1, dS, Qh.subarray(0, nd), 0, dKh);
            scatter(dKh, b, L, W, h, d, s0, gk, true);
          }
        }
      }
    });
  }
  return t;
}

/** Rows s0..L−1 of head h of sequence b ([B, L, W] layout) into a contiguous [L − s0, d] buffer. */
function gather(
  src: Float32Array,
  b: number,
  L: number,
  W: number,
  h: number,
  d: number,
  s0: number,
  dst: Float32Array,
): void {
  for (let t = s0; t < L; t++) {
    const o = (b * L + t) * W + h * d;
    dst.set(src.subarray(o, o + d), (t - s0) * d);
  }
}

function scatter(
  src: Float32Array,
  b: number,
  L: number,
  W: number,
  h: number,
  d: number,
  s0: number,
  dst: Float32Array,
  accumulate: boolean,
): void {
  for (let t = s0; t < L; t++) {
    const o = (b * L + t) * W + h * d;
    const r = (t - s0) * d;
    if (!accumulate) dst.set(src.subarray(r, r + d), o);
    else for (let i = 0; i < d; i++) dst[o + i] = dst[o + i]! + src[r + i]!;
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
