import { kernels } from "../kernels/index.js";
import { allocFloat32Unset } from "../memory.js";
import { Rng } from "../rng.js";
import { needsGrad, record } from "../tape.js";
import { sameShape, Tensor } from "../tensor.js";

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
  const y = allocFloat32Unset(n);
  dropoutInto(rng, x.data, y, p, false);
  const t = new Tensor(y, x.shape);
  if (needsGrad(x)) {
    record(t, (g) => {
      const replay = new Rng(0);
      replay.setState(state);
      const fresh = x.freshGradOrNull();
      dropoutInto(replay, g, fresh ?? x.gradBuffer(), p, fresh === null);
    });
  }
  return t;
}

/**
 * dropout(x) + residual as one op (one pass, one buffer; the values, the draws and the gradients are exactly
 * those of `add(dropout(x, p, rng), residual)`). Used for the residual connections of the LRU block.
 */
export function dropoutAdd(x: Tensor, p: number, rng: Rng, residual: Tensor): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout probability must be in [0, 1), got ${p}`);
  if (!sameShape(x.shape, residual.shape)) {
    throw new RangeError(`dropoutAdd: shapes [${x.shape}] and [${residual.shape}] differ`);
  }
  const state = rng.getState();
  const y = allocFloat32Unset(x.size);
  const k = kernels();
  if (k.dropout) withState(rng, (state) => k.dropout!(x.data, y, residual.data, p, 2, state));
  else rng.applyDropoutAdd(x.data, residual.data, y, p);
  const t = new Tensor(y, x.shape);
  if (needsGrad(x, residual)) {
    record(t, (g) => {
      // Same order as the unfused pair: the add's backward (residual) first, then the dropout replay.
      if (residual.requiresGrad) residual.accumulateGrad(g, false);
      if (x.requiresGrad) {
        const replay = new Rng(0);
        replay.setState(state);
        const fresh = x.freshGradOrNull();
        dropoutInto(replay, g, fresh ?? x.gradBuffer(), p, fresh === null);
      }
    });
  }
  return t;
}

/**
 * dropout(gelu(x)) as one op: the GELU kernel writes the output buffer and the dropout mask is applied in
 * place (values, draws and gradients exactly those of the unfused pair; one buffer and one tape entry fewer).
 */
export function geluDropout(x: Tensor, p: number, rng: Rng): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout probability must be in [0, 1), got ${p}`);
  const k = kernels();
  const y = allocFloat32Unset(x.size);
  k.geluForward(x.data, y);
  const state = rng.getState();
  if (p > 0) dropoutInto(rng, y, y, p, false);
  const t = new Tensor(y, x.shape);
  if (needsGrad(x)) {
    record(t, (g) => {
      let gu = g;
      if (p > 0) {
        gu = allocFloat32Unset(x.size);
        const replay = new Rng(0);
        replay.setState(state);
        dropoutInto(replay, g, gu, p, false);
      }
      const fresh = x.freshGradOrNull();
      if (fresh) {
        k.geluBackward(gu, x.data, fresh);
        return;
      }
      const dx = allocFloat32Unset(x.size);
      k.geluBackward(gu, x.data, dx);
      x.accumulateGrad(dx, true);
    });
  }
  return t;
}

/** rng.applyDropout(src, dst, p, accumulate), in a kernel when the backend has one (same draws, same bits). */
function dropoutInto(rng: Rng, src: Float32Array, dst: Float32Array, p: number, accumulate: boolean): void {
  const k = kernels();
  if (k.dropout) withState(rng, (state) => k.dropout!(src, dst, null, p, accumulate ? 1 : 0, state));
  else rng.applyDropout(src, dst, p, accumulate);
}

/** Runs `fn` on the generator's state words and continues the generator from where `fn` left them. */
function withState(rng: Rng, fn: (state: number[]) => void): void {
  const state = rng.getState();
  fn(state);
  rng.setState(state);
}
