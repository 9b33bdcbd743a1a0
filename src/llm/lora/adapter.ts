/**
 * One LoRA adapter on a linear layer, as PEFT's lora.Linear: y = base(x) + scaling · B(A(dropout(x))).
 * A [r, in] starts kaiming-uniform(a=√5) = U(±1/√in) and B [out, r] starts at zero, so a fresh adapter
 * leaves the model unchanged. Parameter names follow PEFT ("lora_A.weight", "lora_B.weight").
 */

import { Module } from "../../tensor/nn/module.js";
import { dropout } from "../../tensor/ops/dropout.js";
import { scale } from "../../tensor/ops/elementwise.js";
import { linear } from "../../tensor/ops/matmul.js";
import type { Rng } from "../../tensor/rng.js";
import { Parameter, type Tensor } from "../../tensor/tensor.js";
import { loraForward } from "./op.js";

export class LoraAdapter extends Module {
  readonly A: Parameter;
  readonly B: Parameter;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly r: number,
    readonly scaling: number,
    readonly dropoutP: number,
    private readonly rng: Rng,
  ) {
    super();
    const bound = 1 / Math.sqrt(inFeatures);
    const a = new Float32Array(r * inFeatures);
    for (let i = 0; i < a.length; i++) a[i] = rng.uniformIn(-bound, bound);
    this.A = this.registerParameter("lora_A.weight", new Parameter("lora_A.weight", a, [r, inFeatures]));
    this.B = this.registerParameter("lora_B.weight", Parameter.zerosNamed("lora_B.weight", [outFeatures, r]));
  }

  /**
   * The dropout stream, so Module.getRandomState()/setRandomState() checkpoint it (4 words): a resumed
   * LoRA run then draws the same masks as an uninterrupted one.
   */
  protected override ownRng(): Rng {
    return this.rng;
  }

  /** The dropout stream's state (activation checkpointing replays it to redraw the same masks). */
  get rngState(): number[] {
    return this.rng.getState();
  }

  set rngState(state: readonly number[]) {
    this.rng.setState(state);
  }

  /** The adapter's contribution scaling · B·A·dropout(x), shaped like base(x) (composed ops: a reference). */
  delta(x: Tensor): Tensor {
    const dropped = this.training && this.dropoutP > 0 ? dropout(x, this.dropoutP, this.rng) : x;
    return scale(linear(linear(dropped, this.A, null), this.B, null), this.scaling);
  }

  /** base(x) + delta(x) for a frozen (or not) base weight, as one fused op (see op.ts). */
  apply(x: Tensor, base: Tensor): Tensor {
    const p = this.training ? this.dropoutP : 0;
    return loraForward(x, base, this.A, this.B, this.scaling, p, p > 0 ? this.rng : null);
  }

  /** ΔW = scaling · B·A as a dense [out, in] matrix (for merging into the base weight). */
  mergedDelta(): Float32Array {
    const { inFeatures: n, outFeatures: m, r } = this;
    const out = new Float32Array(m * n);
    for (let o = 0; o < m; o++)
      for (let k = 0; k < r; k++) {
        const b = this.B.data[o * r + k]! * this.scaling;
        if (b === 0) continue;
        for (let i = 0; i < n; i++) out[o * n + i] = out[o * n + i]! + b * this.A.data[k * n + i]!;
      }
    return out;
  }
}

/** The dropout states of several adapters (e.g. an attachment's, in its order), 4 words each. */
export function loraRandomState(adapters: Iterable<LoraAdapter>): number[] {
  return [...adapters].flatMap((a) => a.getRandomState());
}

/** Restores loraRandomState() output onto the same adapters, in the same order. */
export function setLoraRandomState(adapters: Iterable<LoraAdapter>, state: readonly number[]): void {
  const list = [...adapters];
  const words = list.map((a) => a.getRandomState().length);
  const total = words.reduce((s, w) => s + w, 0);
  if (state.length !== total)
    throw new RangeError(
      `LoRA random state has ${state.length} words, ${list.length} adapters need ${total}`,
    );
  let at = 0;
  list.forEach((a, i) => {
    a.setRandomState(state.slice(at, at + words[i]!));
    at += words[i]!;
  });
}
