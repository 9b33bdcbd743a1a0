import { allocFloat32 } from "../memory.js";
import { needsGrad, record } from "../tape.js";
import { Tensor } from "../tensor.js";

/** A row's maximum and Σ exp(x − max): the stable normaliser shared by softmax and log-softmax. */
function rowMaxAndExpSum(xd: Float32Array, o: number, cols: number): { max: number; sum: number } {
  let max = -Infinity;
  for (let c = 0; c < cols; c++) if (xd[o + c]! > max) max = xd[o + c]!;
  let sum = 0;
  for (let c = 0; c < cols; c++) sum += Math.exp(xd[o + c]! - max);
  return { max, sum };
}

/** Softmax over the last dim (max-subtracted). */
export function softmax(x: Tensor): Tensor {
  const cols = x.dim(-1);
  const rows = x.size / cols;
  const xd = x.data;
  const y = allocFloat32(x.size);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const { max, sum } = rowMaxAndExpSum(xd, o, cols);
    for (let c = 0; c < cols; c++) y[o + c] = Math.exp(xd[o + c]! - max) / sum;
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
    const { max, sum } = rowMaxAndExpSum(xd, o, cols);
    const logZ = max + Math.log(sum);
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
