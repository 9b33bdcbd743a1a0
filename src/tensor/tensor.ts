import { allocFloat32, isArenaBuffer, residentFloat32 } from "./memory.js";
import type { WeightLike } from "./weight.js";

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A float32 array with a shape, an optional gradient and a flag saying whether gradients flow to it. */
export class Tensor {
  readonly shape: Shape;
  readonly data: Float32Array;
  grad: Float32Array | null = null;
  requiresGrad: boolean;
  /** Leaves that outlive a training step (Parameters) keep their gradient in ordinary memory. */
  protected readonly persistentGrad: boolean = false;

  constructor(data: Float32Array, shape: Shape, requiresGrad = false) {
    if (sizeOf(shape) !== data.length) {
      throw new RangeError(`shape [${shape}] has ${sizeOf(shape)} elements, data has ${data.length}`);
    }
    this.data = data;
    this.shape = [...shape];
    this.requiresGrad = requiresGrad;
  }

  static zeros(shape: Shape, requiresGrad = false): Tensor {
    return new Tensor(new Float32Array(sizeOf(shape)), shape, requiresGrad);
  }

  static from(values: ArrayLike<number>, shape: Shape = [values.length], requiresGrad = false): Tensor {
    return new Tensor(Float32Array.from(values), shape, requiresGrad);
  }

  static scalar(value: number): Tensor {
    return new Tensor(Float32Array.of(value), []);
  }

  get size(): number {
    return this.data.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Size of dimension `axis` (negative counts from the end). */
  dim(axis: number): number {
    const a = axis < 0 ? this.shape.length + axis : axis;
    const d = this.shape[a];
    if (d === undefined) throw new RangeError(`axis ${axis} out of range for shape [${this.shape}]`);
    return d;
  }

  item(): number {
    if (this.data.length !== 1)
      throw new RangeError(`item() needs a single element, shape is [${this.shape}]`);
    return this.data[0]!;
  }

  /** The gradient buffer, allocated as zeros on first use. */
  gradBuffer(): Float32Array {
    if (this.grad === null) this.grad = this.newGrad();
    return this.grad;
  }

  /**
   * For kernels that overwrite their output: a fresh gradient buffer to write into when this tensor has
   * no gradient yet (saves a scratch array and an add pass), or null when the caller must accumulate.
   */
  freshGradOrNull(): Float32Array | null {
    if (this.grad !== null) return null;
    this.grad = this.newGrad();
    return this.grad;
  }

  private newGrad(): Float32Array {
    return this.persistentGrad ? residentFloat32(this.data.length) : allocFloat32(this.data.length);
  }

  /** Adds `g` into the gradient; adopts `g` itself when there is none yet and `g` may be kept. */
  accumulateGrad(g: Float32Array, owned: boolean): void {
    if (this.grad === null && owned && !(this.persistentGrad && isArenaBuffer(g))) {
      this.grad = g;
      return;
    }
    const acc = this.gradBuffer();
    for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + g[i]!;
  }

  /** A tensor sharing nothing with this one and outside any tape. */
  detach(): Tensor {
    return new Tensor(this.data.slice(), this.shape);
  }
}

/** A trainable leaf tensor with a (dotted, checkpoint) name; satisfies the retriever `WeightLike`. */
export class Parameter extends Tensor implements WeightLike {
  name: string;
  protected override readonly persistentGrad = true;

  constructor(name: string, data: Float32Array, shape: Shape) {
    super(data, shape, true);
    this.name = name;
  }

  static zerosNamed(name: string, shape: Shape): Parameter {
    return new Parameter(name, new Float32Array(sizeOf(shape)), shape);
  }
}
