import type { Rng } from "../rng.js";
import { needsGrad, record } from "../tape.js";
import { Tensor } from "../tensor.js";

/**
 * Inverted dropout: each element is zeroed with probability p and survivors are scaled by 1/(1−p).
 * Callers pass p = 0 (or skip the call) in eval mode; p = 0 returns x itself.
 */
export function dropout(x: Tensor, p: number, rng: Rng): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout probability must be in [0, 1), got ${p}`);
  if (p === 0) return x;
  const n = x.size;
  const keepScale = 1 / (1 - p);
  // The mask doubles as the backward multiplier (0 or 1/(1−p)).
  const mask = new Float32Array(n);
  const y = new Float32Array(n);
  const xd = x.data;
  for (let i = 0; i < n; i++) {
    // 32 random bits are plenty for a Bernoulli draw and twice as fast as uniform().
    if (rng.nextUint32() >= p * 4294967296) {
      mask[i] = keepScale;
      y[i] = xd[i]! * keepScale;
    }
  }
  const t = new Tensor(y, x.shape);
  if (needsGrad(x)) {
    record(t, (g) => {
      const gx = x.gradBuffer();
      for (let i = 0; i < n; i++) gx[i] = gx[i]! + g[i]! * mask[i]!;
    });
  }
  return t;
}
