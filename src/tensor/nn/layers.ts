import { gelu } from "../ops/activation.js";
import { dropout, dropoutAdd, geluDropout } from "../ops/dropout.js";
import { add } from "../ops/elementwise.js";
import { embedding } from "../ops/embedding.js";
import { linear } from "../ops/matmul.js";
import { layerNorm } from "../ops/norm.js";
import type { Rng } from "../rng.js";
import { Parameter, type Shape, type Tensor } from "../tensor.js";
import { Module } from "./module.js";

/** y = x·Wᵀ + b, weight [out, in] as torch.nn.Linear. Initialised to zero: models choose their init. */
export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(inFeatures: number, outFeatures: number, bias = true) {
    super();
    this.weight = this.registerParameter("weight", Parameter.zerosNamed("weight", [outFeatures, inFeatures]));
    this.bias = bias ? this.registerParameter("bias", Parameter.zerosNamed("bias", [outFeatures])) : null;
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/** A lookup table [num, dim], as torch.nn.Embedding (no padding_idx). */
export class Embedding extends Module {
  readonly weight: Parameter;

  constructor(num: number, dim: number) {
    super();
    this.weight = this.registerParameter("weight", Parameter.zerosNamed("weight", [num, dim]));
  }

  forward(ids: Int32Array, idsShape: Shape = [ids.length]): Tensor {
    return embedding(this.weight, ids, idsShape);
  }
}

/** torch.nn.LayerNorm over the last dim: weight 1, bias 0, eps 1e-5. */
export class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(
    dim: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.registerParameter(
      "weight",
      new Parameter("weight", new Float32Array(dim).fill(1), [dim]),
    );
    this.bias = this.registerParameter("bias", Parameter.zerosNamed("bias", [dim]));
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** Inverted dropout drawing from its own seeded stream; identity in eval mode. */
export class Dropout extends Module {
  constructor(
    readonly p: number,
    private readonly rng: Rng,
  ) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`dropout probability must be in [0, 1), got ${p}`);
  }

  protected override ownRng(): Rng {
    return this.rng;
  }

  forward(x: Tensor): Tensor {
    return this.training ? dropout(x, this.p, this.rng) : x;
  }

  /** forward(x) + residual; fused into one pass in training (same values, draws and gradients). */
  forwardAdd(x: Tensor, residual: Tensor): Tensor {
    return this.training && this.p > 0 ? dropoutAdd(x, this.p, this.rng, residual) : add(x, residual);
  }

  /** forward(gelu(x)); fused into one op in training (same values, draws and gradients). */
  forwardGelu(x: Tensor): Tensor {
    return this.training ? geluDropout(x, this.p, this.rng) : gelu(x);
  }
}
