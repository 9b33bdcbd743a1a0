import { kernels } from "../kernels/index.js";
import { allocFloat32Unset } from "../memory.js";
import { needsGrad, record } from "../tape.js";
import { Tensor } from "../tensor.js";

/** Exact (erf) GELU, as torch.nn.GELU(). */
export function gelu(x: Tensor): Tensor {
  const k = kernels();
  const y = allocFloat32Unset(x.size); // overwritten by the kernel
  k.geluForward(x.data, y);
  const t = new Tensor(y, x.shape);
  if (needsGrad(x)) {
    record(t, (g) => {
      const fresh = x.freshGradOrNull();
      if (fresh) {
        k.geluBackward(g, x.data, fresh);
        return;
      }
      const dx = allocFloat32Unset(x.size); // overwritten by the kernel
      k.geluBackward(g, x.data, dx);
      x.accumulateGrad(dx, true);
    });
  }
  return t;
}
