import { allocFloat32Unset } from "../memory.js";
import { needsGrad, record } from "../tape.js";
import { Tensor } from "../tensor.js";

function normAxis(t: Tensor, axis: number): number {
  const a = axis < 0 ? t.rank + axis : axis;
  if (a < 0 || a >= t.rank) throw new RangeError(`axis ${axis} out of range for shape [${t.shape}]`);
  return a;
}

/** Sum over one axis (removed from the shape unless keepDim). */
export function sum(x: Tensor, axis: number, keepDim = false): Tensor {
  return reduceAxis(x, axis, keepDim, 1);
}

/** Mean over one axis (removed from the shape unless keepDim). */
export function mean(x: Tensor, axis: number, keepDim = false): Tensor {
  return reduceAxis(x, axis, keepDim, 1 / x.dim(axis));
}

function reduceAxis(x: Tensor, axis: number, keepDim: boolean, factor: number): Tensor {
  const a = normAxis(x, axis);
  const n = x.shape[a]!;
  const outer = x.shape.slice(0, a).reduce((p, d) => p * d, 1);
  const inner = x.shape.slice(a + 1).reduce((p, d) => p * d, 1);
  const out = allocFloat32Unset(outer * inner);
  const d = x.data;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += d[(o * n + k) * inner + i]!;
      out[o * inner + i] = acc * factor;
    }
  }
  const shape = keepDim ? x.shape.map((s, i) => (i === a ? 1 : s)) : x.shape.filter((_, i) => i !== a);
  const t = new Tensor(out, shape);
  if (needsGrad(x)) {
    record(t, (g) => {
      const gx = x.gradBuffer();
      for (let o = 0; o < outer; o++)
        for (let k = 0; k < n; k++)
          for (let i = 0; i < inner; i++) {
            const at = (o * n + k) * inner + i;
            gx[at] = gx[at]! + g[o * inner + i]! * factor;
          }
    });
  }
  return t;
}

/** Sum of every element, as a scalar tensor. */
export function sumAll(x: Tensor): Tensor {
  return reduceAll(x, 1);
}

/** Mean of every element, as a scalar tensor. */
export function meanAll(x: Tensor): Tensor {
  return reduceAll(x, 1 / x.size);
}

function reduceAll(x: Tensor, factor: number): Tensor {
  let acc = 0;
  const d = x.data;
  for (let i = 0; i < d.length; i++) acc += d[i]!;
  const t = new Tensor(Float32Array.of(acc * factor), []);
  if (needsGrad(x)) {
    record(t, (g) => {
      const gx = x.gradBuffer();
      const v = g[0]! * factor;
      for (let i = 0; i < gx.length; i++) gx[i] = gx[i]! + v;
    });
  }
  return t;
}
