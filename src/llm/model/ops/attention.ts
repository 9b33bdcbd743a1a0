/**
 * Causal grouped-query self-attention, fused, on one sequence:
 *   out[t, h] = Σ_{j ≤ pos(t)} softmax_j(q[t, h]·k[j, g(h)] / √d) · v[j, g(h)],   g(h) = ⌊h·kvHeads/heads⌋.
 * q holds the LAST Tq tokens of the sequence (Tq = T normally; Tq = 1 for "logits at the last position
 * only"), k and v all T tokens.
 *
 * Memory: scores are computed a block of query rows at a time and never kept. The backward recomputes them
 * from the saved per-row log-sum-exp (as FlashAttention does), so a layer's attention costs O(T·d) memory
 * on the tape instead of O(heads·T²). All products go through kernels().gemm.
 */
import { kernels } from "../../../tensor/kernels/index.js";
import { needsGrad, record } from "../../../tensor/tape.js";
import { Tensor } from "../../../tensor/tensor.js";

/** Query rows per block: bounds the scratch score matrix to BLOCK × T floats. */
const BLOCK = 128;

export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
}

/** Copies head `h` of rows [r0, r1) of a [rows, heads·d] matrix into a contiguous [r1 − r0, d] buffer. */
function gatherHead(
  src: Float32Array,
  width: number,
  h: number,
  d: number,
  r0: number,
  r1: number,
  dst: Float32Array,
) {
  for (let r = r0; r < r1; r++) dst.set(src.subarray(r * width + h * d, r * width + h * d + d), (r - r0) * d);
}

function scatterAddHead(
  src: Float32Array,
  width: number,
  h: number,
  d: number,
  rows: number,
  dst: Float32Array,
) {
  for (let r = 0; r < rows; r++) {
    const o = r * width + h * d;
    for (let i = 0; i < d; i++) dst[o + i] = dst[o + i]! + src[r * d + i]!;
  }
}

export function causalAttention(q: Tensor, k: Tensor, v: Tensor, shape: AttentionShape): Tensor {
  const { heads, kvHeads, headDim: d } = shape;
  if (q.rank !== 2 || k.rank !== 2 || v.rank !== 2)
    throw new RangeError(
      `causalAttention: expected 2-D [tokens, width], got [${q.shape}], [${k.shape}], [${v.shape}]`,
    );
  if (heads % kvHeads !== 0)
    throw new RangeError(`causalAttention: ${heads} heads not divisible by ${kvHeads}`);
  const qWidth = heads * d;
  const kvWidth = kvHeads * d;
  if (q.dim(1) !== qWidth || k.dim(1) !== kvWidth || v.dim(1) !== kvWidth)
    throw new RangeError(
      `causalAttention: widths [${q.shape}], [${k.shape}], [${v.shape}] ≠ ${qWidth}/${kvWidth}`,
    );
  const T = k.dim(0);
  const Tq = q.dim(0);
  if (v.dim(0) !== T || Tq > T) throw new RangeError(`causalAttention: ${Tq} queries for ${T} keys/values`);
  const qOffset = T - Tq;
  const group = heads / kvHeads;
  const scale = 1 / Math.sqrt(d);
  const gemm = kernels().gemm;

  const out = new Float32Array(Tq * qWidth);
  const lse = new Float32Array(heads * Tq);
  const Qh = new Float32Array(Tq * d);
  const Kg = new Float32Array(T * d);
  const Vg = new Float32Array(T * d);
  const S = new Float32Array(Math.min(BLOCK, Tq) * T);
  const Oc = new Float32Array(Math.min(BLOCK, Tq) * d);
  const rowSum = new Float64Array(Math.min(BLOCK, Tq));

  /** Scores of query rows [i0, i1) against keys [0, n) into S, scaled; returns n. */
  const scores = (i0: number, i1: number): number => {
    const n = qOffset + i1;
    gemm(false, true, i1 - i0, n, d, scale, Qh.subarray(i0 * d, i1 * d), Kg.subarray(0, n * d), 0, S);
    return n;
  };

  for (let g = 0; g < kvHeads; g++) {
    gatherHead(k.data, kvWidth, g, d, 0, T, Kg);
    gatherHead(v.data, kvWidth, g, d, 0, T, Vg);
    for (let h = g * group; h < (g + 1) * group; h++) {
      gatherHead(q.data, qWidth, h, d, 0, Tq, Qh);
      for (let i0 = 0; i0 < Tq; i0 += BLOCK) {
        const i1 = Math.min(Tq, i0 + BLOCK);
        const n = scores(i0, i1);
        for (let r = 0; r < i1 - i0; r++) {
          const row = S.subarray(r * n, (r + 1) * n);
          const last = qOffset + i0 + r; // keys 0..last are visible
          let max = -Infinity;
          for (let j = 0; j <= last; j++) if (row[j]! > max) max = row[j]!;
          let sum = 0;
          for (let j = 0; j <= last; j++) {
            const e = Math.exp(row[j]! - max);
            row[j] = e;
            sum += e;
          }
          row.fill(0, last + 1);
          rowSum[r] = sum;
          lse[h * Tq + i0 + r] = max + Math.log(sum);
        }
        // Unnormalised weights times V, then one division per output row instead of one per score.
        gemm(false, false, i1 - i0, d, n, 1, S, Vg.subarray(0, n * d), 0, Oc);
        for (let r = i0; r < i1; r++) {
          const inv = 1 / rowSum[r - i0]!;
          const o = r * qWidth + h * d;
          for (let i = 0; i < d; i++) out[o + i] = Oc[(r - i0) * d + i]! * inv;
        }
      }
    }
  }

  const t = new Tensor(out, [Tq, qWidth]);
  if (needsGrad(q, k, v)) {
    record(t, (gOut) => {
      const dQh = new Float32Array(Tq * d);
      const dKg = new Float32Array(T * d);
      const dVg = new Float32Array(T * d);
      const dOh = new Float32Array(Tq * d);
      const Oh = new Float32Array(Tq * d);
      const rowDot = new Float32Array(Tq);
      const dP = new Float32Array(S.length);
      for (let g = 0; g < kvHeads; g++) {
        gatherHead(k.data, kvWidth, g, d, 0, T, Kg);
        gatherHead(v.data, kvWidth, g, d, 0, T, Vg);
        dKg.fill(0);
        dVg.fill(0);
        for (let h = g * group; h < (g + 1) * group; h++) {
          gatherHead(q.data, qWidth, h, d, 0, Tq, Qh);
          gatherHead(gOut, qWidth, h, d, 0, Tq, dOh);
          gatherHead(out, qWidth, h, d, 0, Tq, Oh);
          // Σ_j P·dP over a row equals dO·O, the softmax backward's subtracted term.
          for (let r = 0; r < Tq; r++) {
            let s = 0;
            for (let i = 0; i < d; i++) s += dOh[r * d + i]! * Oh[r * d + i]!;
            rowDot[r] = s;
          }
          dQh.fill(0);
          for (let i0 = 0; i0 < Tq; i0 += BLOCK) {
            const i1 = Math.min(Tq, i0 + BLOCK);
            const m = i1 - i0;
            const n = scores(i0, i1);
            for (let r = 0; r < m; r++) {
              const last = qOffset + i0 + r;
              const l = lse[h * Tq + i0 + r]!;
              const row = S.subarray(r * n, (r + 1) * n);
              for (let j = 0; j <= last; j++) row[j] = Math.exp(row[j]! - l);
              row.fill(0, last + 1);
            }
            const dOc = dOh.subarray(i0 * d, i1 * d);
            gemm(true, false, n, d, m, 1, S, dOc, 1, dVg.subarray(0, n * d));
            gemm(false, true, m, n, d, 1, dOc, Vg.subarray(0, n * d), 0, dP);
            for (let r = 0; r < m; r++) {
              const D = rowDot[i0 + r]!;
              const o = r * n;
              for (let j = 0; j < n; j++) dP[o + j] = S[o + j]! * (dP[o + j]! - D) * scale;
            }
            gemm(false, false, m, d, n, 1, dP, Kg.subarray(0, n * d), 1, dQh.subarray(i0 * d, i1 * d));
            gemm(true, false, n, d, m, 1, dP, Qh.subarray(i0 * d, i1 * d), 1, dKg.subarray(0, n * d));
          }
          if (q.requiresGrad) scatterAddHead(dQh, qWidth, h, d, Tq, q.gradBuffer());
        }
        if (k.requiresGrad) scatterAddHead(dKg, kvWidth, g, d, T, k.gradBuffer());
        if (v.requiresGrad) scatterAddHead(dVg, kvWidth, g, d, T, v.gradBuffer());
      }
    });
  }
  return t;
}
