import { kernels } from "../kernels/index.js";
import { needsGrad, record } from "../tape.js";
import { Tensor } from "../tensor.js";

/** Exact (erf) GELU, as torch.nn.GELU(). */
export function gelu(x: Tensor): Tensor {
  const k = kernels();
  const y = new Float32Array(x.size);
  k.geluForward(x.data, y);
  const t = new Tensor(y, x.shape);
  if (needsGrad(x)) {
    record(t, (g) => {
      const dx = new Float32Array(x.size);
      k.geluBackward(g, x.data, dx);
      const gx = x.gradBuffer();
      for (let i = 0; i < gx.length; i++) gx[i] = gx[i]! + dx[i]!;
    });
  }
  return t;
}
