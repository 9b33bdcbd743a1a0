/** A trainable float32 weight with its gradient: what optimizers, gradient clipping and checkpoints see. */
export interface WeightLike {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
  grad: Float32Array | null;
}
