import type { AdamWParam } from "../kernels/api.js";
import { kernels } from "../kernels/index.js";
import { residentFloat32 } from "../memory.js";
import type { NamedArray } from "../safetensors.js";
import type { WeightLike } from "../weight.js";

export interface AdamWOptions {
  lr?: number;
  weightDecay?: number;
  betas?: readonly [number, number];
  eps?: number;
  /** Parameters for which this returns true get weight decay 0 (a second parameter group, as torch). */
  noDecay?: (name: string) => boolean;
}

/** Optimizer state as named arrays + string metadata: exactly what saveSafetensors stores. */
export interface OptimizerState {
  readonly tensors: Map<string, NamedArray>;
  readonly metadata: Record<string, string>;
}

interface Slot {
  readonly param: WeightLike;
  readonly decay: boolean;
  step: number;
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

/**
 * torch.optim.AdamW (amsgrad=False, maximize=False): decoupled weight decay p ← p·(1 − lr·wd), then
 * Adam with bias correction, denominator sqrt(v)/sqrt(1−β2^t) + eps. Parameters whose grad is null are
 * skipped (their step count does not advance), as torch does.
 */
export class AdamW {
  lr: number;
  readonly weightDecay: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  private readonly slots: Slot[];

  constructor(params: readonly WeightLike[], options: AdamWOptions = {}) {
    this.lr = options.lr ?? 1e-3;
    this.weightDecay = options.weightDecay ?? 1e-2;
    this.betas = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    const noDecay = options.noDecay ?? (() => false);
    const seen = new Set<string>();
    for (const p of params) {
      if (seen.has(p.name)) throw new RangeError(`AdamW: duplicate parameter name ${p.name}`);
      seen.add(p.name);
    }
    this.slots = params.map((param) => ({
      param,
      decay: !noDecay(param.name),
      step: 0,
      // In the kernels' memory when the backend has some: the batched update uses them in place.
      expAvg: residentFloat32(param.data.length),
      expAvgSq: residentFloat32(param.data.length),
    }));
  }

  /** Names of parameters in the decayed group, then the undecayed group (for logging and tests). */
  groups(): { decay: string[]; noDecay: string[] } {
    return {
      decay: this.slots.filter((s) => s.decay).map((s) => s.param.name),
      noDecay: this.slots.filter((s) => !s.decay).map((s) => s.param.name),
    };
  }

  step(): void {
    const [beta1, beta2] = this.betas;
    const lr = this.lr;
    const k = kernels();
    if (k.adamw) {
      // Every parameter in one kernel call (same arithmetic, same bits).
      const batch: AdamWParam[] = [];
      for (const slot of this.slots) {
        const grad = slot.param.grad;
        if (grad === null) continue;
        slot.step += 1;
        batch.push({
          p: slot.param.data,
          grad,
          m: slot.expAvg,
          v: slot.expAvgSq,
          decayFactor: slot.decay ? 1 - lr * this.weightDecay : 1,
          stepSize: lr / (1 - beta1 ** slot.step),
          bc2Sqrt: Math.sqrt(1 - beta2 ** slot.step),
        });
      }
      k.adamw(batch, { oneMinusBeta1: 1 - beta1, beta2, oneMinusBeta2: 1 - beta2, eps: this.eps });
      return;
    }
    for (const slot of this.slots) {
      const grad = slot.param.grad;
      if (grad === null) continue;
      const p = slot.param.data;
      const m = slot.expAvg;
      const v = slot.expAvgSq;
      slot.step += 1;
      const decayFactor = slot.decay ? 1 - lr * this.weightDecay : 1;
      const stepSize = lr / (1 - beta1 ** slot.step);
      const bc2Sqrt = Math.sqrt(1 - beta2 ** slot.step);
      const eps = this.eps;
      for (let i = 0; i < p.length; i++) {
        const g = grad[i]!;
        const mi = (m[i] = m[i]! + (1 - beta1) * (g - m[i]!));
        const vi = (v[i] = beta2 * v[i]! + (1 - beta2) * g * g);
        p[i] = p[i]! * decayFactor - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
      }
    }
  }

  /** Sets every gradient to zero (keeps the buffers; torch's set_to_none is not needed here). */
  zeroGrad(): void {
    for (const slot of this.slots) slot.param.grad?.fill(0);
  }

  stateDict(): OptimizerState {
    const tensors = new Map<string, NamedArray>();
    const steps: Record<string, number> = {};
    for (const s of this.slots) {
      tensors.set(`exp_avg.${s.param.name}`, { shape: [...s.param.shape], data: s.expAvg.slice() });
      tensors.set(`exp_avg_sq.${s.param.name}`, { shape: [...s.param.shape], data: s.expAvgSq.slice() });
      steps[s.param.name] = s.step;
    }
    const hyper = { lr: this.lr, weightDecay: this.weightDecay, betas: this.betas, eps: this.eps };
    return {
      tensors,
      metadata: { optimizer: "AdamW", steps: JSON.stringify(steps), hyper: JSON.stringify(hyper) },
    };
  }

  /** Restores moments and step counts; every parameter must be present with a matching shape. */
  loadStateDict(state: OptimizerState): void {
    if (state.metadata.optimizer !== "AdamW") {
      throw new RangeError(
        `optimizer state is for ${state.metadata.optimizer ?? "an unknown optimizer"}, not AdamW`,
      );
    }
    const steps = JSON.parse(state.metadata.steps ?? "{}") as Record<string, number>;
    const hyper = JSON.parse(state.metadata.hyper ?? "{}") as { lr?: number };
    const restored: Array<[Slot, Float32Array, Float32Array, number]> = [];
    for (const s of this.slots) {
      const name = s.param.name;
      const m = state.tensors.get(`exp_avg.${name}`);
      const v = state.tensors.get(`exp_avg_sq.${name}`);
      const step = steps[name];
      if (!m || !v || typeof step !== "number")
        throw new RangeError(`optimizer state has no entry for ${name}`);
      if (m.data.length !== s.param.data.length || v.data.length !== s.param.data.length) {
        throw new RangeError(
          `optimizer state for ${name} has ${m.data.length} values, parameter has ${s.param.data.length}`,
        );
      }
      restored.push([s, m.data, v.data, step]);
    }
    // Validate everything before mutating, so a bad file leaves the optimizer untouched.
    for (const [s, m, v, step] of restored) {
      s.expAvg.set(m);
      s.expAvgSq.set(v);
      s.step = step;
    }
    if (typeof hyper.lr === "number") this.lr = hyper.lr;
  }
}
