import { kernels } from "../kernels/index.js";
import { allocFloat32Unset } from "../memory.js";
import { needsGrad, record } from "../tape.js";
import { sameShape, Tensor } from "../tensor.js";

export interface MatmulOptions {
  /** Treat the last two dims of `a` as transposed (a stored [..., K, M]). */
  transA?: boolean;
  /** Treat the last two dims of `b` as transposed (b stored [..., N, K]). */
  transB?: boolean;
}

/**
 * Batched matrix product op(a)·op(b) over the last two dims. `b` is either 2-D (shared by every batch
 * entry of `a`) or has exactly a's batch dims. All work goes through kernels().gemm.
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  if (a.rank < 2 || b.rank < 2)
    throw new RangeError(`matmul needs rank ≥ 2, got [${a.shape}] and [${b.shape}]`);
  const [ar, ac] = [a.dim(-2), a.dim(-1)];
  const [br, bc] = [b.dim(-2), b.dim(-1)];
  const M = transA ? ac : ar;
  const K = transA ? ar : ac;
  const Kb = transB ? bc : br;
  const N = transB ? br : bc;
  if (K !== Kb)
    throw new RangeError(`matmul: inner dims differ (${K} vs ${Kb}) for [${a.shape}]·[${b.shape}]`);
  const batchShape = a.shape.slice(0, -2);
  const batch = a.size / (ar * ac);
  const sharedB = b.rank === 2;
  if (!sharedB && !sameShape(batchShape, b.shape.slice(0, -2))) {
    throw new RangeError(`matmul: batch dims of [${a.shape}] and [${b.shape}] differ`);
  }
  const k = kernels();
  const out = allocFloat32Unset(batch * M * N); // every element written (beta = 0)
  // With a shared B and untransposed A the batch folds into M: one big GEMM.
  const fold = sharedB && !transA;
  const runs = fold ? 1 : batch;
  const rowsPerRun = fold ? batch * M : M;
  const aStride = ar * ac;
  const bStride = sharedB ? 0 : br * bc;
  for (let r = 0; r < runs; r++) {
    k.gemm(
      transA,
      transB,
      rowsPerRun,
      N,
      K,
      1,
      a.data.subarray(r * aStride, r * aStride + (fold ? a.size : aStride)),
      b.data.subarray(r * bStride, r * bStride + br * bc),
      0,
      out.subarray(r * rowsPerRun * N, (r + 1) * rowsPerRun * N),
    );
  }
  const t = new Tensor(out, [...batchShape, M, N]);
  if (needsGrad(a, b)) {
    record(t, (g) => {
      const ga = a.requiresGrad ? a.gradBuffer() : null;
      const gb = b.requiresGrad ? b.gradBuffer() : null;
      for (let r = 0; r < runs; r++) {
        const aS = a.data.subarray(r * aStride, r * aStride + (fold ? a.size : aStride));
        const bS = b.data.subarray(r * bStride, r * bStride + br * bc);
        const gS = g.subarray(r * rowsPerRun * N, (r + 1) * rowsPerRun * N);
        const m = rowsPerRun;
        if (ga) {
          const gaS = ga.subarray(r * aStride, r * aStride + (fold ? a.size : aStride));
          // dA = dC·op(B)ᵀ, or stored transposed: dAᵀ = op(B)·dCᵀ.
          if (!transA) k.gemm(false, !transB, m, K, N, 1, gS, bS, 1, gaS);
          else k.gemm(transB, true, K, m, N, 1, bS, gS, 1, gaS);
        }
        if (gb) {
          const gbS = gb.subarray(r * bStride, r * bStride + br * bc);
          // dB = op(A)ᵀ·dC, or stored transposed: dBᵀ = dCᵀ·op(A).
          if (!transB) k.gemm(!transA, false, K, N, m, 1, aS, gS, 1, gbS);
          else k.gemm(true, transA, N, K, m, 1, gS, aS, 1, gbS);
        }
      }
    });
  }
  return t;
}

/** torch.nn.functional.linear: x·Wᵀ + bias, x [..., in], W [out, in], bias [out] or null. */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  if (weight.rank !== 2) throw new RangeError(`linear: weight must be 2-D, got [${weight.shape}]`);
  const [outF, inF] = weight.shape as [number, number];
  if (x.dim(-1) !== inF) throw new RangeError(`linear: input [${x.shape}] does not end with ${inF}`);
  if (bias && (bias.rank !== 1 || bias.size !== outF)) {
    throw new RangeError(`linear: bias must be [${outF}], got [${bias.shape}]`);
  }
  const rows = x.size / inF;
  const k = kernels();
  const out = allocFloat32Unset(rows * outF); // every element written: bias rows + beta 1, or beta 0
  if (bias && k.linearForward) {
    k.linearForward(x.data, weight.data, bias.data, rows, inF, outF, out);
  } else {
    if (bias) broadcastRows(bias.data, rows, out);
    k.gemm(false, true, rows, outF, inF, 1, x.data, weight.data, bias ? 1 : 0, out);
  }
  const t = new Tensor(out, [...x.shape.slice(0, -1), outF]);
  if (needsGrad(x, weight, bias)) {
    record(t, (g) => {
      if (x.requiresGrad) k.gemm(false, false, rows, inF, outF, 1, g, weight.data, 1, x.gradBuffer());
      if (weight.requiresGrad) k.gemm(true, false, outF, inF, rows, 1, g, x.data, 1, weight.gradBuffer());
      if (bias?.requiresGrad) {
        const gb = bias.gradBuffer();
        if (k.addColumnSums) k.addColumnSums(g, rows, outF, gb);
        else for (let r = 0; r < rows; r++) for (let j = 0; j < outF; j++) gb[j] = gb[j]! + g[r * outF + j]!;
      }
    });
  }
  return t;
}

/** out[r, :] = row for every r < rows, by doubling copies (log2(rows) calls instead of one per row). */
function broadcastRows(row: Float32Array, rows: number, out: Float32Array): void {
  const w = row.length;
  if (rows === 0 || w === 0) return;
  out.set(row, 0);
  for (let have = 1; have < rows; have *= 2) out.copyWithin(have * w, 0, Math.min(have, rows - have) * w);
}
