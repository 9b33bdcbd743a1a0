import { needsGrad, record } from "../tape.js";
import { Tensor } from "../tensor.js";

/**
 * Rows of several left-padded sequences stored back to back: sequence k owns rows
 * [rowStart[k], rowStart[k] + length[k]), which are the *last* length[k] positions of a sequence padded on
 * the left to `paddedLength` (a power of two). Positions before a sequence's rows are padding that is never
 * stored: they cannot influence stored rows because padding never propagates (mask 0).
 */
export interface ScanLayout {
  readonly rowStart: Int32Array;
  readonly length: Int32Array;
  readonly paddedLength: number;
  /** 1 where the row holds a real item (token > 0); the state of a 0 row is not carried forward. */
  readonly mask: Uint8Array;
}

/**
 * The LRU's diagonal complex linear recurrence computed with LRURec's parallel scan
 * (official model/lru.py, lru_parallel): for levels l = 2, 4, …, paddedLength, in every block of l
 * positions the second half receives λ^(j+1)·h[last of first half]·mask[last of first half].
 * For left padding this equals h_t = λ·mask_{t−1}·h_{t−1} + bu_t.
 *
 * Complex values are packed per row as [re(0..C) | im(0..C)]: `bu` is [rows, 2C], `lambda` is [2C].
 * Forward and backward are fused loops; each row is the source of exactly one level (the one given by
 * its lowest zero bit), so saving one pre-level copy per row is enough for the backward.
 */
export function linearRecurrenceScan(bu: Tensor, lambda: Tensor, layout: ScanLayout): Tensor {
  if (bu.rank !== 2) throw new RangeError(`linearRecurrenceScan: bu must be [rows, 2C], got [${bu.shape}]`);
  const rows = bu.dim(0);
  const width = bu.dim(1);
  const C = width >> 1;
  if (width !== 2 * C || lambda.size !== width) {
    throw new RangeError(
      `linearRecurrenceScan: bu [${bu.shape}] and lambda [${lambda.shape}] must have width 2C`,
    );
  }
  const P = layout.paddedLength;
  const levels = Math.round(Math.log2(P));
  if (2 ** levels !== P) throw new RangeError(`paddedLength ${P} is not a power of two`);
  const numSeq = layout.rowStart.length;
  if (layout.mask.length !== rows)
    throw new RangeError(`mask has ${layout.mask.length} rows, bu has ${rows}`);
  for (let k = 0; k < numSeq; k++) {
    const n = layout.length[k]!;
    const r0 = layout.rowStart[k]!;
    if (n < 0 || n > P || r0 < 0 || r0 + n > rows) throw new RangeError(`sequence ${k} rows out of range`);
  }

  // Powers λ^1..λ^(P/2) per channel, in float64.
  const half = P >> 1;
  const powRe = new Float64Array((half + 1) * C);
  const powIm = new Float64Array((half + 1) * C);
  const lam = lambda.data;
  for (let c = 0; c < C; c++) {
    powRe[c] = 1;
    powIm[c] = 0;
  }
  for (let k = 1; k <= half; k++) {
    for (let c = 0; c < C; c++) {
      const pr = powRe[(k - 1) * C + c]!;
      const pi = powIm[(k - 1) * C + c]!;
      const lr = lam[c]!;
      const li = lam[C + c]!;
      powRe[k * C + c] = pr * lr - pi * li;
      powIm[k * C + c] = pr * li + pi * lr;
    }
  }

  const h = bu.data.slice();
  const saved = new Float32Array(rows * width);
  const mask = layout.mask;
  for (let k = 0; k < numSeq; k++) {
    const n = layout.length[k]!;
    const r0 = layout.rowStart[k]!;
    const vs = P - n; // virtual index of the first stored row
    for (let i = 1; i <= levels; i++) {
      const l = 1 << i;
      const hl = l >> 1;
      for (let block = Math.floor(vs / l) * l; block < P; block += l) {
        const s = block + hl - 1;
        if (s < vs) continue;
        const src = r0 + s - vs;
        if (mask[src] === 0) continue;
        const so = src * width;
        for (let c = 0; c < width; c++) saved[so + c] = h[so + c]!;
        for (let j = 0; j < hl; j++) {
          const to = (src + 1 + j) * width;
          const po = (j + 1) * C;
          for (let c = 0; c < C; c++) {
            const ar = powRe[po + c]!;
            const ai = powIm[po + c]!;
            const xr = h[so + c]!;
            const xi = h[so + C + c]!;
            h[to + c] = h[to + c]! + (ar * xr - ai * xi);
            h[to + C + c] = h[to + C + c]! + (ar * xi + ai * xr);
          }
        }
      }
    }
  }

  const out = new Tensor(h, bu.shape);
  if (needsGrad(bu, lambda)) {
    record(out, (gOut) => {
      const g = gOut.slice();
      // ∂L/∂(λ^k) per channel, accumulated over every use.
      const gpRe = new Float64Array((half + 1) * C);
      const gpIm = new Float64Array((half + 1) * C);
      for (let k = 0; k < numSeq; k++) {
        const n = layout.length[k]!;
        const r0 = layout.rowStart[k]!;
        const vs = P - n;
        for (let i = levels; i >= 1; i--) {
          const l = 1 << i;
          const hl = l >> 1;
          for (let block = Math.floor(vs / l) * l; block < P; block += l) {
            const s = block + hl - 1;
            if (s < vs) continue;
            const src = r0 + s - vs;
            if (mask[src] === 0) continue;
            const so = src * width;
            for (let j = 0; j < hl; j++) {
              const to = (src + 1 + j) * width;
              const po = (j + 1) * C;
              for (let c = 0; c < C; c++) {
                const gr = g[to + c]!;
                const gi = g[to + C + c]!;
                const ar = powRe[po + c]!;
                const ai = powIm[po + c]!;
                // g_src += conj(λ^(j+1))·g_t ; g_pow += conj(h_src)·g_t
                g[so + c] = g[so + c]! + (ar * gr + ai * gi);
                g[so + C + c] = g[so + C + c]! + (ar * gi - ai * gr);
                const xr = saved[so + c]!;
                const xi = saved[so + C + c]!;
                gpRe[po + c] = gpRe[po + c]! + (xr * gr + xi * gi);
                gpIm[po + c] = gpIm[po + c]! + (xr * gi - xi * gr);
              }
            }
          }
        }
      }
      if (bu.requiresGrad) {
        const gb = bu.gradBuffer();
        for (let i = 0; i < g.length; i++) gb[i] = gb[i]! + g[i]!;
      }
      if (lambda.requiresGrad) {
        // d(λ^k)/dλ = k·λ^(k−1) (holomorphic), so g_λ = Σ_k conj(k·λ^(k−1))·g_(λ^k).
        const gl = lambda.gradBuffer();
        for (let c = 0; c < C; c++) {
          let accRe = 0;
          let accIm = 0;
          for (let kk = 1; kk <= half; kk++) {
            const ar = kk * powRe[(kk - 1) * C + c]!;
            const ai = kk * powIm[(kk - 1) * C + c]!;
            const gr = gpRe[kk * C + c]!;
            const gi = gpIm[kk * C + c]!;
            accRe += ar * gr + ai * gi;
            accIm += ar * gi - ai * gr;
          }
          gl[c] = gl[c]! + accRe;
          gl[C + c] = gl[C + c]! + accIm;
        }
      }
    });
  }
  return out;
}
