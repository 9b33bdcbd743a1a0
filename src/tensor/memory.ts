import { kernels } from "./kernels/index.js";

/**
 * Scratch memory for one training step. A training step allocates the same large activation and gradient
 * buffers every time; recycling them avoids the garbage collector's work on ~100 MB of short-lived
 * ArrayBuffers per step. Inside `withArena`, ops take buffers from the arena; when the callback returns
 * every buffer handed out goes back to the arena's free lists (zeroed again on reuse).
 *
 * Safe by construction only for values that do not outlive the callback: leaf gradients (Parameters)
 * always use their own memory (see Tensor.gradBuffer), and nothing else may escape a step that runs in an arena.
 * Its buffers live in the kernels' memory when the backend offers it (`residentFloat32`): warm across steps and
 * used in place by the kernels.
 */
export class BufferArena {
  // Free buffers by size class. Training batches differ in their number of labelled rows, so exact
  // lengths rarely repeat: keying by exact length would grow the free lists without bound.
  private readonly free = new Map<number, Float32Array[]>();
  private inUse: Float32Array[] = [];
  private bytes = 0;

  /** A buffer of n floats, zeroed unless `zero` is false (for outputs the caller overwrites entirely). */
  take(n: number, zero = true): Float32Array {
    const cls = sizeClass(n);
    const base = this.free.get(cls)?.pop() ?? this.larger(cls) ?? this.fresh(cls);
    this.inUse.push(base);
    const view = base.length === n ? base : base.subarray(0, n);
    if (zero) view.fill(0);
    if (view !== base) arenaBuffers.add(view);
    return view;
  }

  /**
   * A free buffer of the next larger classes (at most twice the size): a batch a little larger than any
   * before then reuses what smaller ones left instead of allocating (and first touching) new memory.
   */
  private larger(cls: number): Float32Array | undefined {
    let best = 0;
    for (const [c, list] of this.free) {
      if (c > cls && c <= 2 * cls && list.length > 0 && (best === 0 || c < best)) best = c;
    }
    return best === 0 ? undefined : this.free.get(best)!.pop();
  }

  private fresh(cls: number): Float32Array {
    const buf = residentFloat32(cls);
    arenaBuffers.add(buf);
    this.bytes += buf.byteLength;
    return buf;
  }

  releaseAll(): void {
    for (const buf of this.inUse) {
      let list = this.free.get(buf.length);
      if (!list) this.free.set(buf.length, (list = []));
      list.push(buf);
    }
    this.inUse = [];
  }

  /** Bytes held (in use or free). */
  get size(): number {
    return this.bytes;
  }
}

/** Rounds up to 2^k · {1, 1.25, 1.5, 1.75}: at most 25% slack, few distinct classes. */
export function sizeClass(n: number): number {
  if (n <= 64) return 64;
  const p = 2 ** Math.floor(Math.log2(n));
  const step = p / 4;
  return Math.ceil(n / step) * step;
}

/**
 * A zeroed float32 buffer that lives for good, in the kernel backend's own memory when it has some (the wasm
 * heap: kernel calls then use it in place instead of copying it in and out), else ordinary memory.
 */
export function residentFloat32(n: number): Float32Array {
  return kernels().resident?.(n) ?? new Float32Array(n);
}

const arenaBuffers = new WeakSet<Float32Array>();
let current: BufferArena | null = null;

/** A zeroed float32 buffer: from the active arena if there is one, else ordinary memory. */
export function allocFloat32(n: number): Float32Array {
  return current ? current.take(n) : new Float32Array(n);
}

/**
 * A float32 buffer whose contents are unspecified (stale values from an earlier use of recycled memory):
 * only for outputs that the caller overwrites completely before anything reads them.
 */
export function allocFloat32Unset(n: number): Float32Array {
  return current ? current.take(n, false) : new Float32Array(n);
}

/** A copy of `src` in scratch memory. */
export function copyFloat32(src: Float32Array): Float32Array {
  const out = allocFloat32Unset(src.length);
  out.set(src);
  return out;
}

/** True for buffers that belong to some arena (and so must not be kept past its step). */
export function isArenaBuffer(buf: Float32Array): boolean {
  return arenaBuffers.has(buf);
}

/** Runs `fn` with `arena` active; every buffer it took is recycled afterwards, even on error. */
export function withArena<T>(arena: BufferArena, fn: () => T): T {
  if (current !== null) return fn(); // nested: the outer scope recycles
  current = arena;
  try {
    return fn();
  } finally {
    current = null;
    arena.releaseAll();
  }
}
