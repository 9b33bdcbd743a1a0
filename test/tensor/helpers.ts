import { Rng } from "../../src/tensor/rng.js";
import { sizeOf, Tensor } from "../../src/tensor/tensor.js";

/** A tensor of uniform values in [lo, hi) from a seeded stream. */
export function randTensor(rng: Rng, shape: number[], lo = -1, hi = 1): Tensor {
  return Tensor.from(
    Array.from({ length: sizeOf(shape) }, () => rng.uniformIn(lo, hi)),
    shape,
  );
}

export function seeded(seed = 7): Rng {
  return new Rng(seed);
}
