import { allocFloat32 } from "../memory.js";
import { needsGrad, record } from "../tape.js";
import { Tensor } from "../tensor.js";

/** Softmax over the last dim (max-subtracted). */
export function softmax(x: Tensor): Tensor {
  const cols = x.dim(-1);
  const rows = x.size / cols;
  const xd = x.data;
  const y = allocFloat32(x.size);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) if (xd[o + c]! > max) max = xd[o + c]!;
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(xd[o + c]! - max);
    for (let c = 0; c < cols; c++) y[o + c] = Math.exp(xd[o + c]! - max) / s;
  }
  const t = new Tensor(y, x.shape);
  if (needsGrad(x)) {
    record(t, (g) => {
      const gx = x.gradBuffer();
      for (let r = 0; r < rows; r++) {
        const o = r * cols;
        let dot = 0;
        for (let c = 0; c < cols; c++) dot += g[o + c]! * y[o + c]!;
        for (let c = 0; c < cols; c++) gx[o + c] = gx[o + c]! + y[o + c]! * (g[o + c]! - dot);
      }
    });
  }
  return t;
}

/** log softmax over the last dim. */
export function logSoftmax(x: Tensor): Tensor {
  const cols = x.dim(-1);
  const rows = x.size / cols;
  const xd = x.data;
  const y = allocFloat32(x.size);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) if (xd[o + c]! > max) max = xd[o + c]!;
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(xd[o + c]! - max);
    const logZ = max + Math.log(s);
    for (let c = 0; c < cols; c++) y[o + c] = xd[o + c]! - logZ;
  }
  const t = new Tensor(y, x.shape);
  if (needsGrad(x)) {
    record(t, (g) => {
      const gx = x.gradBuffer();
      for (let r = 0; r < rows; r++) {
        const o = r * cols;
        let gs = 0;
        for (let c = 0; c < cols; c++) gs += g[o + c]!;
        for (let c = 0; c < cols; c++) gx[o + c] = gx[o + c]! + g[o + c]! - Math.exp(y[o + c]!) * gs;
      }
    });
  }
  return t;
}
