import { kernels } from "../kernels/index.js";
import { allocFloat32, allocFloat32Unset } from "../memory.js";
import { needsGrad, record } from "../tape.js";
import { Tensor } from "../tensor.js";

/** torch.nn.functional.layer_norm over the last dim (biased variance, eps inside the sqrt). */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  const cols = x.dim(-1);
  if (gamma.size !== cols || beta.size !== cols) {
    throw new RangeError(`layerNorm: gamma/beta must have ${cols} elements, got ${gamma.size}/${beta.size}`);
  }
  const rows = x.size / cols;
  const k = kernels();
  // The kernel writes every element of y, mean and rstd.
  const y = allocFloat32Unset(x.size);
  const mean = allocFloat32Unset(rows);
  const rstd = allocFloat32Unset(rows);
  k.layerNormForward(x.data, gamma.data, beta.data, rows, cols, eps, y, mean, rstd);
  const t = new Tensor(y, x.shape);
  if (needsGrad(x, gamma, beta)) {
    record(t, (g) => {
      // The kernel overwrites dx: write straight into x's gradient when it has none yet.
      const fresh = x.requiresGrad ? x.freshGradOrNull() : null;
      const dx = fresh ?? allocFloat32Unset(x.size); // overwritten by the kernel
      const dGamma = gamma.requiresGrad ? gamma.gradBuffer() : allocFloat32(cols);
      const dBeta = beta.requiresGrad ? beta.gradBuffer() : allocFloat32(cols);
      k.layerNormBackward(g, x.data, gamma.data, mean, rstd, rows, cols, dx, dGamma, dBeta);
      if (x.requiresGrad && !fresh) x.accumulateGrad(dx, true);
    });
  }
  return t;
}

/** RMSNorm over the last dim, as Llama: y = x / sqrt(mean(x²) + eps) · weight. */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  const cols = x.dim(-1);
  if (weight.size !== cols)
    throw new RangeError(`rmsNorm: weight must have ${cols} elements, got ${weight.size}`);
  const rows = x.size / cols;
  const xd = x.data;
  const w = weight.data;
  const y = allocFloat32(x.size);
  const rstd = allocFloat32(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let ss = 0;
    for (let c = 0; c < cols; c++) ss += xd[o + c]! * xd[o + c]!;
    const rs = 1 / Math.sqrt(ss / cols + eps);
    rstd[r] = rs;
    for (let c = 0; c < cols; c++) y[o + c] = xd[o + c]! * rs * w[c]!;
  }
  const t = new Tensor(y, x.shape);
  if (needsGrad(x, weight)) {
    record(t, (g) => {
      const gx = x.requiresGrad ? x.gradBuffer() : null;
      const gw = weight.requiresGrad ? weight.gradBuffer() : null;
      for (let r = 0; r < rows; r++) {
        const o = r * cols;
        const rs = rstd[r]!;
        let dot = 0; // Σ g·w·x
        for (let c = 0; c < cols; c++) {
          dot += g[o + c]! * w[c]! * xd[o + c]!;
          if (gw) gw[c] = gw[c]! + g[o + c]! * xd[o + c]! * rs;
        }
        if (gx) {
          const k = (dot * rs * rs * rs) / cols;
          for (let c = 0; c < cols; c++) gx[o + c] = gx[o + c]! + g[o + c]! * w[c]! * rs - xd[o + c]! * k;
        }
      }
    });
  }
  return t;
}
