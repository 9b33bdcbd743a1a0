import { Rng } from "../../../src/tensor/rng.js";
import { type Shape, sizeOf, Tensor } from "../../../src/tensor/tensor.js";

export function randn(rng: Rng, shape: Shape, std = 1): Tensor {
  const data = new Float32Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = std * rng.normal();
  return new Tensor(data, shape);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`lengths differ: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export { Rng };
