import type { WeightLike } from "../weight.js";

/**
 * torch.nn.utils.clip_grad_norm_ with the L2 norm: the norm is over all gradients together; when it exceeds
 * maxNorm every gradient is scaled by maxNorm / (norm + 1e-6). Returns the norm before clipping.
 * Parameters with a null grad are ignored.
 */
export function clipGradNorm(params: readonly WeightLike[], maxNorm: number): number {
  let sumSq = 0;
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    for (let i = 0; i < g.length; i++) sumSq += g[i]! * g[i]!;
  }
  const norm = Math.sqrt(sumSq);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    for (const p of params) {
      const g = p.grad;
      if (!g) continue;
      for (let i = 0; i < g.length; i++) g[i] = g[i]! * coef;
    }
  }
  return norm;
}
