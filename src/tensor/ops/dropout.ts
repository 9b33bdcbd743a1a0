import { allocFloat32 } from "../memory.js";
import { Rng } from "../rng.js";
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
  // The mask is not stored: backward replays the generator from the saved state (32 bits per element).
  const state = rng.getState();
  const y = allocFloat32(n);
  rng.applyDropout(x.data, y, p, false);
  const t = new Tensor(y, x.shape);
  if (needsGrad(x)) {
    record(t, (g) => {
      const replay = new Rng(0);
      replay.setState(state);
      const fresh = x.freshGradOrNull();
      replay.applyDropout(g, fresh ?? x.gradBuffer(), p, fresh === null);
    });
  }
  return t;
}
