/**
 * Activation checkpointing on the global tape (torch.utils.checkpoint): run `fn` without recording, keep
 * only its input, and in the backward re-run it with recording on and back-propagate through that fresh
 * sub-tape. The outer backward() has already taken its own entries, so the nested backward() replays only
 * the recomputed ones. Memory per checkpointed block drops from all its activations to its input.
 */
import { mul } from "../../../tensor/ops/elementwise.js";
import { sumAll } from "../../../tensor/ops/reduce.js";
import { backward, isGradEnabled, noGrad, record } from "../../../tensor/tape.js";
import { Tensor } from "../../../tensor/tensor.js";

export interface RandomState {
  /** Captures the random streams `fn` draws from (dropout), so the recomputation draws the same masks. */
  save(): unknown;
  restore(state: unknown): void;
}

/**
 * y = fn(x) with recomputation in the backward. `trainable` says whether anything inside `fn` (or x)
 * needs a gradient; when false this is a plain call.
 */
export function checkpoint(
  fn: (x: Tensor) => Tensor,
  x: Tensor,
  trainable: boolean,
  random: RandomState | null = null,
): Tensor {
  if (!isGradEnabled() || !trainable) return fn(x);
  const state = random?.save();
  const y = noGrad(() => fn(x));
  record(y, (g) => {
    const xi = new Tensor(x.data, x.shape, x.requiresGrad);
    if (random) random.restore(state);
    const yi = fn(xi);
    if (!yi.requiresGrad) return;
    backward(sumAll(mul(yi, new Tensor(g, yi.shape))));
    if (x.requiresGrad && xi.grad) x.accumulateGrad(xi.grad, true);
  });
  return y;
}
