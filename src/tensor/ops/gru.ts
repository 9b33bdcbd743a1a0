import { kernels } from "../kernels/index.js";
import { allocFloat32 } from "../memory.js";
import { needsGrad, record } from "../tape.js";
import { Tensor } from "../tensor.js";

/**
 * A single-layer GRU over left-padded sequences, fused over time, with torch.nn.GRU's equations and gate
 * order (r, z, n):
 *   r = σ(xr + W_hr·h + b_hr),  z = σ(xz + W_hz·h + b_hz),  n = tanh(xn + r ⊙ (W_hn·h + b_hn)),
 *   h' = (1 − z) ⊙ n + z ⊙ h,   h₀ = 0,
 * where x = [xr | xz | xn] is the input projection W_ih·x + b_ih, computed beforehand by one `linear` over
 * every row (the only input-dependent work that parallelises over time).
 *
 * xProj [B, L, 3H], wHh [3H, H], bHh [3H] or null; sequence b starts at position start[b] (its earlier
 * positions are padding and are never computed: their outputs are 0, and the state starts at 0 at start[b]).
 * Returns every hidden state [B, L, H]. Per time step one GEMM over the sequences active at that step
 * (sequences are processed in order of their start, so the active ones are a prefix); backward is
 * back-propagation through time from the saved gates, with the recurrent weight's and bias's gradients summed
 * over all steps at once at the end.
 */
export function gru(xProj: Tensor, wHh: Tensor, bHh: Tensor | null, start: Int32Array): Tensor {
  if (xProj.rank !== 3 || wHh.rank !== 2)
    throw new RangeError(
      `gru: expected xProj [B, L, 3H] and wHh [3H, H], got [${xProj.shape}], [${wHh.shape}]`,
    );
  const [B, L] = xProj.shape as [number, number, number];
  if (start.length !== B) throw new RangeError(`gru: ${start.length} starts for ${B} sequences`);
  for (let b = 0; b < B; b++) {
    const s = start[b]!;
    if (!(Number.isInteger(s) && s >= 0 && s <= L))
      throw new RangeError(`gru: start[${b}] = ${s} outside [0, ${L}]`);
  }
  return gruRows(
    xProj,
    wHh,
    bHh,
    B,
    L,
    start,
    Int32Array.from({ length: B }, (_, b) => b * L),
  );
}

/**
 * The same GRU over packed sequences: xProj [N, 3H], sequence b is rows offsets[b] … offsets[b+1] − 1 (its
 * items in order) → every state [N, H]. No row is padding, so nothing is spent on it (not even the input
 * projection, which the caller computes on the N rows only).
 */
export function gruPacked(xProj: Tensor, wHh: Tensor, bHh: Tensor | null, offsets: Int32Array): Tensor {
  if (xProj.rank !== 2 || wHh.rank !== 2)
    throw new RangeError(`gru: expected xProj [N, 3H] and wHh [3H, H], got [${xProj.shape}], [${wHh.shape}]`);
  const B = offsets.length - 1;
  if (B < 0 || offsets[0] !== 0 || offsets[B] !== xProj.dim(0))
    throw new RangeError(`gru: offsets must run from 0 to ${xProj.dim(0)}`);
  let L = 0;
  for (let b = 0; b < B; b++) {
    const n = offsets[b + 1]! - offsets[b]!;
    if (n < 0) throw new RangeError("gru: offsets must not decrease");
    L = Math.max(L, n);
  }
  // Sequences end together at step L − 1: sequence b starts at L − n_b, its step t is row offsets[b] + t − start.
  const start = Int32Array.from({ length: B }, (_, b) => L - (offsets[b + 1]! - offsets[b]!));
  const base = Int32Array.from({ length: B }, (_, b) => offsets[b]! - start[b]!);
  return gruRows(xProj, wHh, bHh, B, L, start, base);
}

/** Sequence b's step t (≥ start[b]) is row base[b] + t of xProj [rows, 3H] and of the output [rows, H]. */
function gruRows(
  xProj: Tensor,
  wHh: Tensor,
  bHh: Tensor | null,
  B: number,
  L: number,
  start: Int32Array,
  base: Int32Array,
): Tensor {
  const H3 = xProj.shape[xProj.rank - 1]!;
  const H = wHh.dim(1);
  if (H3 !== 3 * H || wHh.dim(0) !== 3 * H)
    throw new RangeError(`gru: xProj [${xProj.shape}] and wHh [${wHh.shape}] disagree on 3H`);
  if (bHh && bHh.size !== 3 * H) throw new RangeError(`gru: bHh must have ${3 * H} elements`);
  const order = Array.from({ length: B }, (_, b) => b).sort((a, b) => start[a]! - start[b]! || a - b);
  // active[t] = sequences running at step t (a prefix of `order`); rowOff[t] = saved rows before step t.
  const active = new Int32Array(L);
  const rowOff = new Int32Array(L + 1);
  {
    let a = 0;
    for (let t = 0; t < L; t++) {
      while (a < B && start[order[a]!]! <= t) a++;
      active[t] = a;
      rowOff[t + 1] = rowOff[t]! + a;
    }
  }
  const rows = rowOff[L]!;
  const gemm = kernels().gemm;
  const x = xProj.data;
  const w = wHh.data;
  const bias = bHh?.data ?? null;
  const out = allocFloat32((xProj.size / H3) * H);
  // Saved per (step, active row): previous state, r, z, n and W_hn·h + b_hn.
  const hPrev = allocFloat32(rows * H);
  const R = allocFloat32(rows * H);
  const Z = allocFloat32(rows * H);
  const N = allocFloat32(rows * H);
  const HN = allocFloat32(rows * H);
  const hs = new Float32Array(B * H); // state, in `order`
  const gh = new Float32Array(B * 3 * H);

  for (let t = 0; t < L; t++) {
    const a = active[t]!;
    if (a === 0) continue;
    if (bias) for (let i = 0; i < a; i++) gh.set(bias, i * 3 * H);
    gemm(false, true, a, 3 * H, H, 1, hs.subarray(0, a * H), w, bias ? 1 : 0, gh.subarray(0, a * 3 * H));
    const sBase = rowOff[t]! * H;
    hPrev.set(hs.subarray(0, a * H), sBase);
    for (let i = 0; i < a; i++) {
      const b = order[i]!;
      const xo = (base[b]! + t) * H3;
      const go = i * H3;
      const so = sBase + i * H;
      const oo = (base[b]! + t) * H;
      for (let j = 0; j < H; j++) {
        const r = 1 / (1 + Math.exp(-(x[xo + j]! + gh[go + j]!)));
        const z = 1 / (1 + Math.exp(-(x[xo + H + j]! + gh[go + H + j]!)));
        const hn = gh[go + 2 * H + j]!;
        const n = Math.tanh(x[xo + 2 * H + j]! + r * hn);
        const h = (1 - z) * n + z * hs[i * H + j]!;
        R[so + j] = r;
        Z[so + j] = z;
        N[so + j] = n;
        HN[so + j] = hn;
        hs[i * H + j] = h;
        out[oo + j] = h;
      }
    }
  }

  const result = new Tensor(out, [...xProj.shape.slice(0, -1), H]);
  if (needsGrad(xProj, wHh, bHh)) {
    record(result, (g) => {
      const dx = xProj.requiresGrad ? xProj.gradBuffer() : null;
      const dw = wHh.requiresGrad ? wHh.gradBuffer() : null;
      const db = bHh?.requiresGrad ? bHh.gradBuffer() : null;
      const dhs = new Float32Array(B * H); // gradient w.r.t. the state entering the current step, in `order`
      // Gradient w.r.t. W_hh·h + b_hh of every (step, active row), laid out as hPrev: dW_hh and db_hh are one
      // product / one column sum over all of them after the time loop (not one small GEMM per step).
      const Gall = allocFloat32(rows * H3);
      for (let t = L - 1; t >= 0; t--) {
        const a = active[t]!;
        if (a === 0) continue;
        const sBase = rowOff[t]! * H;
        const G = Gall.subarray(rowOff[t]! * H3, (rowOff[t]! + a) * H3);
        for (let i = 0; i < a; i++) {
          const b = order[i]!;
          const xo = (base[b]! + t) * H3;
          const go = i * H3;
          const so = sBase + i * H;
          const oo = (base[b]! + t) * H;
          for (let j = 0; j < H; j++) {
            const dh = dhs[i * H + j]! + g[oo + j]!;
            const r = R[so + j]!;
            const z = Z[so + j]!;
            const n = N[so + j]!;
            const dn = dh * (1 - z);
            const dz = dh * (hPrev[so + j]! - n);
            const dan = dn * (1 - n * n);
            const dar = dan * HN[so + j]! * r * (1 - r);
            const daz = dz * z * (1 - z);
            if (dx) {
              dx[xo + j] = dx[xo + j]! + dar;
              dx[xo + H + j] = dx[xo + H + j]! + daz;
              dx[xo + 2 * H + j] = dx[xo + 2 * H + j]! + dan;
            }
            G[go + j] = dar;
            G[go + H + j] = daz;
            G[go + 2 * H + j] = dan * r;
            dhs[i * H + j] = dh * z;
          }
        }
        gemm(false, false, a, H, H3, 1, G, w, 1, dhs.subarray(0, a * H));
      }
      if (dw && rows > 0) gemm(true, false, H3, H, rows, 1, Gall, hPrev, 1, dw);
      if (db) for (let i = 0; i < rows; i++) for (let j = 0; j < H3; j++) db[j] = db[j]! + Gall[i * H3 + j]!;
    });
  }
  return result;
}
