/**
 * The LoRA update as one tape op: y = base + scaling · (dropout(x)·Aᵀ)·Bᵀ, x [rows, in], A [r, in],
 * B [out, r]. Keeps only the [rows, r] intermediate and the dropout generator state (the mask is redrawn
 * in the backward), where the composed ops would keep three [rows, out]/[rows, in] tensors per adapter.
 */
import { kernels } from "../../tensor/kernels/index.js";
import { Rng } from "../../tensor/rng.js";
import { needsGrad, record } from "../../tensor/tape.js";
import { sameShape, Tensor } from "../../tensor/tensor.js";

export function loraForward(
  x: Tensor,
  base: Tensor,
  A: Tensor,
  B: Tensor,
  scaling: number,
  dropoutP: number,
  rng: Rng | null,
): Tensor {
  const [r, inF] = A.shape as [number, number];
  const outF = B.dim(0);
  if (A.rank !== 2 || B.rank !== 2 || B.dim(1) !== r)
    throw new RangeError(`lora: A [${A.shape}] and B [${B.shape}] do not form a rank-${r} pair`);
  if (x.dim(-1) !== inF) throw new RangeError(`lora: input [${x.shape}] does not end with ${inF}`);
  if (!sameShape(base.shape, [...x.shape.slice(0, -1), outF]))
    throw new RangeError(
      `lora: base output [${base.shape}] does not match [${x.shape.slice(0, -1)}, ${outF}]`,
    );
  if (dropoutP > 0 && !rng) throw new RangeError("lora: dropout needs a generator");
  const rows = x.size / inF;
  const gemm = kernels().gemm;
  const drop = dropoutP > 0;
  const state = drop ? rng!.getState() : null;
  const dropped = (): Float32Array => {
    if (!drop) return x.data;
    const g = new Rng(0);
    g.setState(state!);
    const out = new Float32Array(x.size);
    g.applyDropout(x.data, out, dropoutP, false);
    return out;
  };
  if (drop) {
    // Advance the caller's stream exactly as the mask draw does.
    rng!.applyDropout(x.data, new Float32Array(x.size), dropoutP, false);
  }
  const u = new Float32Array(rows * r);
  gemm(false, true, rows, r, inF, 1, dropped(), A.data, 0, u);
  const y = base.data.slice();
  gemm(false, true, rows, outF, r, scaling, u, B.data, 1, y);
  const t = new Tensor(y, base.shape);
  if (needsGrad(x, base, A, B)) {
    record(t, (g) => {
      if (base.requiresGrad) base.accumulateGrad(g, false);
      if (B.requiresGrad) gemm(true, false, outF, r, rows, scaling, g, u, 1, B.gradBuffer());
      if (!A.requiresGrad && !x.requiresGrad) return;
      const du = new Float32Array(rows * r);
      gemm(false, false, rows, r, outF, scaling, g, B.data, 0, du);
      if (A.requiresGrad) gemm(true, false, r, inF, rows, 1, du, dropped(), 1, A.gradBuffer());
      if (x.requiresGrad) {
        const dxd = new Float32Array(x.size);
        gemm(false, false, rows, inF, r, 1, du, A.data, 0, dxd);
        if (drop) {
          // Dropout is linear: its backward is the same mask (and scale) applied to the gradient.
          const replay = new Rng(0);
          replay.setState(state!);
          replay.applyDropout(dxd, x.gradBuffer(), dropoutP, true);
        } else {
          x.accumulateGrad(dxd, true);
        }
      }
    });
  }
  return t;
}
