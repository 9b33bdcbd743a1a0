/** Llama's MLP gate, fused: silu(gate)·up, so the [T, ffn] sigmoid never has to be stored. */
import { needsGrad, record } from "../../../tensor/tape.js";
import { sameShape, Tensor } from "../../../tensor/tensor.js";

export function swiglu(gate: Tensor, up: Tensor): Tensor {
  if (!sameShape(gate.shape, up.shape))
    throw new RangeError(`swiglu: gate [${gate.shape}] and up [${up.shape}] differ`);
  const n = gate.size;
  const gd = gate.data;
  const ud = up.data;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = gd[i]!;
    out[i] = (x / (1 + Math.exp(-x))) * ud[i]!;
  }
  const t = new Tensor(out, gate.shape);
  if (needsGrad(gate, up)) {
    record(t, (g) => {
      const gg = gate.requiresGrad ? gate.gradBuffer() : null;
      const gu = up.requiresGrad ? up.gradBuffer() : null;
      for (let i = 0; i < n; i++) {
        const x = gd[i]!;
        const s = 1 / (1 + Math.exp(-x));
        if (gu) gu[i] = gu[i]! + g[i]! * x * s;
        // d silu/dx = s·(1 + x·(1 − s))
        if (gg) gg[i] = gg[i]! + g[i]! * ud[i]! * s * (1 + x * (1 - s));
      }
    });
  }
  return t;
}
