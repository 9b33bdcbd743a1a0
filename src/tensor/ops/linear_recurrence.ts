import { kernels } from "../kernels/index.js";
import { allocFloat32, copyFloat32 } from "../memory.js";
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
 * The LRU's diagonal complex linear recurrence with LRURec's padding semantics (official model/lru.py,
 * lru_parallel): for levels l = 2, 4, …, paddedLength, in every block of l positions the second half
 * receives λ^(j+1)·h[last of first half]·mask[last of first half].
 *
 * When a sequence's mask is non-decreasing (left padding, the normal case) that scan equals the recurrence
 * h_t = λ·mask_{t−1}·h_{t−1} + bu_t exactly (in exact arithmetic), which costs L instead of L/2·log2(L)
 * complex multiply-adds, so those sequences run sequentially; any other mask runs the official block scan.
 *
 * Complex values are packed per row as [re(0..C) | im(0..C)]: `bu` is [rows, 2C], `lambda` is [2C].
 * Forward and backward are fused loops with hand-written gradients.
 *
 * `consumeInput`: the caller will not read `bu` again, so when no gradient is recorded (inference) the scan runs
 * in place in bu's buffer instead of a copy of it (the same values; one pass over the rows fewer).
 */
export function linearRecurrenceScan(
  bu: Tensor,
  lambda: Tensor,
  layout: ScanLayout,
  options: { consumeInput?: boolean } = {},
): Tensor {
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
  const mask = layout.mask;
  if (mask.length !== rows) throw new RangeError(`mask has ${mask.length} rows, bu has ${rows}`);
  const sequential = new Uint8Array(numSeq);
  let anyBlock = false;
  for (let k = 0; k < numSeq; k++) {
    const n = layout.length[k]!;
    const r0 = layout.rowStart[k]!;
    if (n < 0 || n > P || r0 < 0 || r0 + n > rows) throw new RangeError(`sequence ${k} rows out of range`);
    let monotone = 1;
    for (let r = r0 + 1; r < r0 + n; r++) if (mask[r]! < mask[r - 1]!) monotone = 0;
    sequential[k] = monotone;
    if (!monotone) anyBlock = true;
  }

  const lam = lambda.data;
  const powers = anyBlock ? lambdaPowers(lam, C, P >> 1) : null;
  const grads = needsGrad(bu, lambda);
  const h = options.consumeInput && !grads ? bu.data : copyFloat32(bu.data);
  // Block scan only: each row is the source of exactly one level (its lowest zero bit), so one saved
  // pre-level copy per row is enough for the backward.
  const saved = anyBlock ? allocFloat32(rows * width) : null;
  // The sequential sequences in a kernel when the backend has one (same arithmetic, same bits).
  const kern = kernels();
  const inKernel = kern.recurrenceForward && kern.recurrenceBackward && rows > 0 && C % 2 === 0;
  const seqs = { rowStart: layout.rowStart, length: layout.length, mask, run: sequential };
  if (inKernel) kern.recurrenceForward!(h, lam, seqs, C);
  for (let k = 0; k < numSeq; k++) {
    const n = layout.length[k]!;
    const r0 = layout.rowStart[k]!;
    if (!sequential[k]) blockForward(h, saved!, powers!, mask, r0, n, P, levels, C);
    else if (!inKernel) sequentialForward(h, lam, mask, r0, n, C);
  }

  const out = new Tensor(h, bu.shape);
  if (grads) {
    record(out, (gOut) => {
      // Work in place in bu's gradient when it has none yet (the usual case): saves a copy and an add pass.
      const fresh = bu.requiresGrad ? bu.freshGradOrNull() : null;
      const g = fresh ?? copyFloat32(gOut);
      if (fresh) fresh.set(gOut);
      const gLam = new Float64Array(width);
      const gPow = powers ? new Float64Array(powers.re.length * 2) : null;
      if (inKernel) kern.recurrenceBackward!(g, h, lam, seqs, C, gLam);
      for (let k = 0; k < numSeq; k++) {
        const n = layout.length[k]!;
        const r0 = layout.rowStart[k]!;
        if (!sequential[k]) blockBackward(g, gPow!, saved!, powers!, mask, r0, n, P, levels, C);
        else if (!inKernel) sequentialBackward(g, gLam, h, lam, mask, r0, n, C);
      }
      if (bu.requiresGrad && !fresh) bu.accumulateGrad(g, true);
      if (lambda.requiresGrad) {
        if (powers) addPowerGradients(gLam, gPow!, powers, C, P >> 1);
        const gl = lambda.gradBuffer();
        for (let i = 0; i < width; i++) gl[i] = gl[i]! + gLam[i]!;
      }
    });
  }
  return out;
}

interface Powers {
  /** λ^k for k = 0..half, [k * C + c]. */
  readonly re: Float64Array;
  readonly im: Float64Array;
}

function lambdaPowers(lam: Float32Array, C: number, half: number): Powers {
  const re = new Float64Array((half + 1) * C);
  const im = new Float64Array((half + 1) * C);
  for (let c = 0; c < C; c++) re[c] = 1;
  for (let k = 1; k <= half; k++) {
    for (let c = 0; c < C; c++) {
      const pr = re[(k - 1) * C + c]!;
      const pi = im[(k - 1) * C + c]!;
      const lr = lam[c]!;
      const li = lam[C + c]!;
      re[k * C + c] = pr * lr - pi * li;
      im[k * C + c] = pr * li + pi * lr;
    }
  }
  return { re, im };
}

function sequentialForward(
  h: Float32Array,
  lam: Float32Array,
  mask: Uint8Array,
  r0: number,
  n: number,
  C: number,
) {
  const width = 2 * C;
  for (let r = r0 + 1; r < r0 + n; r++) {
    if (mask[r - 1] === 0) continue;
    const po = (r - 1) * width;
    const to = r * width;
    for (let c = 0; c < C; c++) {
      const lr = lam[c]!;
      const li = lam[C + c]!;
      const xr = h[po + c]!;
      const xi = h[po + C + c]!;
      h[to + c] = h[to + c]! + (lr * xr - li * xi);
      h[to + C + c] = h[to + C + c]! + (lr * xi + li * xr);
    }
  }
}

function sequentialBackward(
  g: Float32Array,
  gLam: Float64Array,
  h: Float32Array,
  lam: Float32Array,
  mask: Uint8Array,
  r0: number,
  n: number,
  C: number,
) {
  const width = 2 * C;
  for (let r = r0 + n - 1; r > r0; r--) {
    if (mask[r - 1] === 0) continue;
    const po = (r - 1) * width;
    const to = r * width;
    for (let c = 0; c < C; c++) {
      const gr = g[to + c]!;
      const gi = g[to + C + c]!;
      const lr = lam[c]!;
      const li = lam[C + c]!;
      // g_{t−1} += conj(λ)·g_t ; g_λ += conj(h_{t−1})·g_t
      g[po + c] = g[po + c]! + (lr * gr + li * gi);
      g[po + C + c] = g[po + C + c]! + (lr * gi - li * gr);
      const xr = h[po + c]!;
      const xi = h[po + C + c]!;
      gLam[c] = gLam[c]! + (xr * gr + xi * gi);
      gLam[C + c] = gLam[C + c]! + (xr * gi - xi * gr);
    }
  }
}

function blockForward(
  h: Float32Array,
  saved: Float32Array,
  pw: Powers,
  mask: Uint8Array,
  r0: number,
  n: number,
  P: number,
  levels: number,
  C: number,
) {
  const width = 2 * C;
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
          const ar = pw.re[po + c]!;
          const ai = pw.im[po + c]!;
          const xr = h[so + c]!;
          const xi = h[so + C + c]!;
          h[to + c] = h[to + c]! + (ar * xr - ai * xi);
          h[to + C + c] = h[to + C + c]! + (ar * xi + ai * xr);
        }
      }
    }
  }
}

/** gPow holds ∂L/∂(λ^k) as [re block | im block], each (half+1)·C long. */
function blockBackward(
  g: Float32Array,
  gPow: Float64Array,
  saved: Float32Array,
  pw: Powers,
  mask: Uint8Array,
  r0: number,
  n: number,
  P: number,
  levels: number,
  C: number,
) {
  const width = 2 * C;
  const imOff = pw.re.length;
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
          const ar = pw.re[po + c]!;
          const ai = pw.im[po + c]!;
          // g_src += conj(λ^(j+1))·g_t ; g_pow += conj(h_src before this level)·g_t
          g[so + c] = g[so + c]! + (ar * gr + ai * gi);
          g[so + C + c] = g[so + C + c]! + (ar * gi - ai * gr);
          const xr = saved[so + c]!;
          const xi = saved[so + C + c]!;
          gPow[po + c] = gPow[po + c]! + (xr * gr + xi * gi);
          gPow[imOff + po + c] = gPow[imOff + po + c]! + (xr * gi - xi * gr);
        }
      }
    }
  }
}

/** d(λ^k)/dλ = k·λ^(k−1) (holomorphic), so g_λ += Σ_k conj(k·λ^(k−1))·g_(λ^k). */
function addPowerGradients(gLam: Float64Array, gPow: Float64Array, pw: Powers, C: number, half: number) {
  const imOff = pw.re.length;
  for (let c = 0; c < C; c++) {
    let accRe = 0;
    let accIm = 0;
    for (let k = 1; k <= half; k++) {
      const ar = k * pw.re[(k - 1) * C + c]!;
      const ai = k * pw.im[(k - 1) * C + c]!;
      const gr = gPow[k * C + c]!;
      const gi = gPow[imOff + k * C + c]!;
      accRe += ar * gr + ai * gi;
      accIm += ar * gi - ai * gr;
    }
    gLam[c] = gLam[c]! + accRe;
    gLam[C + c] = gLam[C + c]! + accIm;
  }
}
