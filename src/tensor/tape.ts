import type { Tensor } from "./tensor.js";

/**
 * Reverse-mode autograd on a global tape. Ops append an entry when grad mode is on and an input requires
 * grad; `backward(loss)` replays the tape newest-first (creation order is a valid topological order) and
 * clears it. Leaf gradients accumulate across calls, as in torch.
 */
interface TapeEntry {
  readonly output: Tensor;
  /** Adds the contribution of `gradOut` to the inputs' gradients. */
  readonly backward: (gradOut: Float32Array) => void;
}

let tape: TapeEntry[] = [];
let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` in inference mode: no tape entries, outputs do not require grad. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** True when an op over `inputs` must be recorded. */
export function needsGrad(...inputs: ReadonlyArray<Tensor | null | undefined>): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t?.requiresGrad) return true;
  return false;
}

/** Records `output` as produced by an op; call only when needsGrad(inputs) was true. */
export function record(output: Tensor, backward: (gradOut: Float32Array) => void): void {
  output.requiresGrad = true;
  tape.push({ output, backward });
}

/** Back-propagates from a single-element tensor, then clears the tape. */
export function backward(loss: Tensor, seed = 1): void {
  if (loss.size !== 1) throw new RangeError(`backward() needs a scalar, got shape [${loss.shape}]`);
  if (!loss.requiresGrad)
    throw new Error("backward(): the loss does not depend on any tensor requiring grad");
  const entries = tape;
  tape = [];
  const g = loss.gradBuffer();
  g[0] = g[0]! + seed;
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    if (e.output.grad !== null) e.backward(e.output.grad);
  }
}

/** Drops recorded entries without back-propagating (e.g. after an evaluation forward done with grad on). */
export function clearTape(): void {
  tape = [];
}

export function tapeLength(): number {
  return tape.length;
}
