import { kernels } from "../kernels/index.js";
import { allocFloat32 } from "../memory.js";
import { needsGrad, record } from "../tape.js";
import { Tensor } from "../tensor.js";

/**
 * Mean cross-entropy of logits H·Wᵀ + bias over rows whose label ≠ ignoreIndex, without materialising the
 * [N × V] logits (kernels().linearCrossEntropy). The kernel produces the gradients during the forward pass;
 * they are stashed and scaled by the upstream gradient in backward. With no labelled rows the loss is 0.
 * H [N, D], W [V, D], bias [V] or null, labels Int32Array of N.
 */
export function linearCrossEntropy(
  H: Tensor,
  W: Tensor,
  bias: Tensor | null,
  labels: Int32Array,
  ignoreIndex = -100,
): Tensor {
  if (H.rank !== 2 || W.rank !== 2) throw new RangeError(`linearCrossEntropy: H and W must be 2-D`);
  const [N, D] = H.shape as [number, number];
  const [V, Dw] = W.shape as [number, number];
  if (Dw !== D) throw new RangeError(`linearCrossEntropy: H is [${H.shape}] but W is [${W.shape}]`);
  if (labels.length !== N) throw new RangeError(`linearCrossEntropy: ${labels.length} labels for ${N} rows`);
  if (bias && bias.size !== V)
    throw new RangeError(`linearCrossEntropy: bias has ${bias.size} elements, V = ${V}`);
  for (let n = 0; n < N; n++) {
    const l = labels[n]!;
    if (l !== ignoreIndex && (l < 0 || l >= V))
      throw new RangeError(`label ${l} at row ${n} outside [0, ${V})`);
  }
  const withGrad = needsGrad(H, W, bias);
  const dH = withGrad && H.requiresGrad ? allocFloat32(N * D) : undefined;
  const dW = withGrad && W.requiresGrad ? allocFloat32(V * D) : undefined;
  const dBias = withGrad && bias?.requiresGrad ? allocFloat32(V) : undefined;
  const { loss, count } = kernels().linearCrossEntropy({
    H: H.data,
    W: W.data,
    bias: bias ? bias.data : null,
    labels,
    N,
    D,
    V,
    ignoreIndex,
    dH,
    dW,
    dBias,
  });
  const t = new Tensor(Float32Array.of(count > 0 ? loss / count : 0), []);
  if (withGrad) {
    record(t, (g) => {
      const s = g[0]!;
      const pairs: Array<[Float32Array | undefined, Tensor | null]> = [
        [dH, H],
        [dW, W],
        [dBias, bias],
      ];
      for (const [d, target] of pairs) {
        if (!d || !target) continue;
        if (s !== 1) for (let i = 0; i < d.length; i++) d[i] = d[i]! * s;
        target.accumulateGrad(d, true);
      }
    });
  }
  return t;
}
