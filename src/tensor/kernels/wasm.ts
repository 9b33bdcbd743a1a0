import { availableParallelism } from "node:os";
import { setFlagsFromString } from "node:v8";
import type { Kernels, RecurrenceSequences } from "./api.js";
import { overlayNative, resolveNative } from "./native.js";
import { type WasmMemory, type WasmModule, WebAssemblyApi } from "./wasm-api.js";
import { KERNELS_RELAXED_WASM_BASE64, KERNELS_SIMD_WASM_BASE64 } from "./wasm-bytes.generated.js";
import { KernelThread } from "./wasm-thread.js";

// The `wasm` backend: AssemblyScript SIMD kernels (assembly/kernels.ts) over one shared WebAssembly.Memory,
// optionally split with one helper thread. Every call copies its inputs into a per-call scratch arena in the
// wasm heap and its results back out: O(n²) copies against O(n³) work for GEMM, and the fused cross-entropy never
// materialises the logits, so its copies are O(N·D + V·D).

const PAGE = 65536;
const MAX_PAGES = 65536; // must match wasm-build.ts
const ARENA_BASE = PAGE; // the module has no data or stack, but keep page 0 free anyway
const EXPORTS = [
  "gemm",
  "gemmShared",
  "packB",
  "geluForward",
  "geluBackward",
  "layerNormForward",
  "layerNormBackward",
  "linearCrossEntropy",
  "addInto",
  "addColumnSums",
  "dropout",
  "recurrenceForward",
  "recurrenceBackward",
  "recurrenceLambdaGrad",
  "adamw",
  "addScaled",
  "addParts",
] as const;

type Fn = (...args: number[]) => number;
type Exports = Record<(typeof EXPORTS)[number] | "gemmWorkBytes" | "ceWorkBytes", Fn>;

/**
 * "simd": baseline WebAssembly SIMD; "relaxed": plus relaxed-SIMD fused multiply-add (measured ~15–20% faster
 * GEMM on an AVX-512 EPYC, where separate mul and add already issue in parallel).
 */
export type WasmVariant = "simd" | "relaxed";

export interface WasmKernelOptions {
  /** Default: "relaxed" when this runtime can run it, else "simd". */
  variant?: WasmVariant;
  /**
   * Native AVX2 kernels (src/tensor/kernels/native.ts) in place of the hottest wasm exports, same bits. true:
   * required; false: pure wasm; default: when available and LLAMAREC_KERNELS is not "wasm" (relaxed variant only).
   */
  native?: boolean;
  /** 1 or 2 threads; default min(2, os.availableParallelism()). */
  threads?: number;
  /** Work sizes from which a call is split across the two threads (tests lower them to exercise the split). */
  parallelMinFlops?: number;
  parallelMinElements?: number;
  /** Rows per block in the fused cross-entropy. */
  ceBlockRows?: number;
  /** Testing: the helper runs every split call to completion before this thread joins in (finding nothing left). */
  helperFirst?: boolean;
  /**
   * A split call whose caller then waits for the helper longer than this (ms, default 1) and longer than it
   * worked itself counts as a stall (the helper was descheduled): the next `backoffCalls` (default 256)
   * calls run on this thread alone (doubling for stalls in a row, up to 64×).
   */
  stallMs?: number;
  backoffCalls?: number;
  /**
   * How long (ms, default 0.25) the helper keeps polling for the next call after one it took part in, before it
   * sleeps: split calls that follow each other closely (an evaluation batch's layers) then find it awake.
   */
  helperSpinMs?: number;
  /**
   * Inside a hold window (`hold(true)` … `hold(false)`: a training step, a validation pass) the helper polls
   * for calls instead of sleeping between them, and calls are split from these smaller sizes.
   */
  heldMinFlops?: number;
  heldMinElements?: number;
  /** A hold polls at most this long (ms, default 50) after the helper's last call before it sleeps. */
  holdIdleMs?: number;
}

export interface WasmKernels extends Kernels {
  readonly threads: number;
  readonly variant: WasmVariant;
  /** Whether the native kernels replace the hottest wasm exports. */
  readonly native: boolean;
  /** How many calls the helper thread took part in (it skips calls it wakes up too late for). */
  helperCalls(): number;
  /** How many times waiting for a descheduled helper switched splitting off for a while. */
  helperStalls(): number;
  /** Milliseconds the helper thread has spent polling for calls (after a call, or in a hold window). */
  helperSpinMs(): number;
  /** How many times the helper stopped polling because it had been preempted (a busy machine). */
  helperPreemptions(): number;
  /** True while the helper thread polls for calls (tests: no polling once a hold window ended). */
  helperSpinning(): boolean;
  hold: NonNullable<Kernels["hold"]>;
  /** Current size of the wasm heap (it keeps its high-water mark; calls reuse it). */
  memoryBytes(): number;
  /** A zeroed buffer inside the wasm heap, never reused by the backend: kernel calls use it in place. */
  resident(n: number): Float32Array;
  addColumnSums: NonNullable<Kernels["addColumnSums"]>;
  dropout: NonNullable<Kernels["dropout"]>;
  recurrenceForward: NonNullable<Kernels["recurrenceForward"]>;
  recurrenceBackward: NonNullable<Kernels["recurrenceBackward"]>;
  adamw: NonNullable<Kernels["adamw"]>;
  addScaled: NonNullable<Kernels["addScaled"]>;
  linearForward: NonNullable<Kernels["linearForward"]>;
  /** Stops the helper thread (it is unref'd, so this is optional). */
  dispose(): void;
}

const BYTES: Record<WasmVariant, string> = {
  simd: KERNELS_SIMD_WASM_BASE64,
  relaxed: KERNELS_RELAXED_WASM_BASE64,
};
const compiled: Partial<Record<WasmVariant, WasmModule>> = {};

function wasmModule(variant: WasmVariant): WasmModule {
  // Synchronous compile: the module is a few KB, so callers need no async init.
  compiled[variant] ??= new WebAssemblyApi.Module(Buffer.from(BYTES[variant], "base64"));
  return compiled[variant];
}

function validates(variant: WasmVariant): boolean {
  try {
    return WebAssemblyApi.validate(Buffer.from(BYTES[variant], "base64"));
  } catch {
    return false;
  }
}

/** True when this runtime validates a module using v128 (WebAssembly SIMD). */
export function wasmSimdSupported(): boolean {
  return validates("simd");
}

/**
 * True when relaxed SIMD can run here. Node 22+ has it on; Node 20 has it behind a V8 flag, which is turned on
 * at run time (V8 flags are process-wide; this one only adds opcodes, so nothing else changes behaviour).
 */
export function wasmRelaxedSimdSupported(): boolean {
  if (validates("relaxed")) return true;
  try {
    setFlagsFromString("--experimental-wasm-relaxed-simd");
  } catch {
    return false;
  }
  return validates("relaxed");
}

const align64 = (n: number): number => Math.ceil(n / 64) * 64;
const round4 = (n: number): number => Math.ceil(n / 4) * 4;

// The wasm heap holds two kinds of memory. Resident blocks (`resident()`: the activation arena of
// src/tensor/memory.ts and parameter gradients take their buffers here) are handed out from the bottom up
// and never returned: their owners recycle them. Kernel calls receive resident arrays in place (no copy in or
// out). Above the resident blocks, a bump allocator provides each call's scratch (operands that are not
// resident, packed panels, partial sums), reset at the start of every call; resident blocks are only handed
// out between calls, so the two never overlap. The memory keeps its high-water size (wasm memories cannot
// shrink). Shared memory is never detached by growth, so views made before a grow stay valid.
class Arena {
  /** End of the resident blocks: scratch starts here. */
  private residentTop = ARENA_BASE;
  private top = ARENA_BASE;
  /** The SharedArrayBuffer objects this memory has had (one per size): resident views live on them. */
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  /** Ranges of the operands of the current call that live in resident memory, [start, end) bytes. */
  private readonly inPlace: number[] = [];

  constructor(private readonly memory: WasmMemory) {
    this.buffers.add(memory.buffer);
  }

  reset(): void {
    this.top = this.residentTop;
    this.inPlace.length = 0;
  }

  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / PAGE);
    if (have / PAGE + pages > MAX_PAGES) {
      throw new RangeError(`wasm kernels: ${end} bytes needed, above the 4 GiB wasm limit`);
    }
    this.memory.grow(pages);
    this.buffers.add(this.memory.buffer);
  }

  alloc(bytes: number): number {
    const ptr = this.top;
    this.top = ptr + align64(Math.max(bytes, 4));
    this.ensure(this.top);
    return ptr;
  }

  /** A zeroed float32 block of the heap that stays valid (and is never handed out again). */
  resident(n: number): Float32Array {
    const ptr = this.residentTop;
    this.residentTop = ptr + align64(Math.max(round4(n) * 4, 4));
    this.ensure(this.residentTop);
    const view = new Float32Array(this.memory.buffer, ptr, n);
    view.fill(0); // the block may have served as some call's scratch
    return view;
  }

  /** Byte address of `a` when it lives in this heap's resident blocks, else −1. */
  addressOf(a: ArrayBufferView): number {
    return this.buffers.has(a.buffer) && a.byteOffset >= ARENA_BASE && a.byteOffset < this.residentTop
      ? a.byteOffset
      : -1;
  }

  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, n);
  }

  f64(ptr: number, n: number): Float64Array {
    return new Float64Array(this.memory.buffer, ptr, n);
  }

  i32(ptr: number, n: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, n);
  }

  /** Allocates room for `src` (rounded up to whole v128 lanes) and copies it in. */
  copyIn(src: Float32Array, n = src.length): number {
    const ptr = this.alloc(round4(n) * 4);
    this.f32(ptr, n).set(n === src.length ? src : src.subarray(0, n));
    return ptr;
  }

  /**
   * The address of input `src` (its first n floats): in place when resident (also when n is not a multiple of
   * 4: kernels read whole v128 lanes, and resident blocks are padded to them), else a scratch copy.
   */
  input(src: Float32Array, n = src.length): number {
    const at = this.addressOf(src);
    if (at < 0) return this.copyIn(src, n);
    this.inPlace.push(at, at + n * 4);
    return at;
  }

  /**
   * The address a kernel writes output `dst` (first n floats) to: in place when resident and clear of
   * every in-place input of this call, else scratch (then copyOut). `keep`: the kernel reads the old
   * values too (accumulation), so a scratch copy starts from them.
   */
  output(dst: Float32Array, n: number, keep: boolean): number {
    const at = this.addressOf(dst);
    if (at >= 0 && !this.overlaps(at, at + n * 4)) {
      this.inPlace.push(at, at + n * 4);
      return at;
    }
    return keep ? this.copyIn(dst, n) : this.alloc(round4(n) * 4);
  }

  /** Copies an output back unless the kernel wrote it in place. */
  copyOut(dst: Float32Array, ptr: number, n: number): void {
    if (ptr !== this.addressOf(dst)) dst.set(this.f32(ptr, n));
  }

  private overlaps(start: number, end: number): boolean {
    for (let i = 0; i < this.inPlace.length; i += 2) {
      if (start < this.inPlace[i + 1]! && this.inPlace[i]! < end) return true;
    }
    return false;
  }

  zeros(n: number): number {
    const ptr = this.alloc(round4(n) * 4);
    this.f32(ptr, round4(n)).fill(0);
    return ptr;
  }
}

function need(name: string, arr: ArrayLike<number>, n: number): void {
  if (arr.length < n) throw new RangeError(`${name} has ${arr.length} elements, needs ${n}`);
}

// Calls the helper takes part in before a slow one counts as a stall.
const WARM_CALLS = 8;
// Splitting backs off when the waits for a late helper exceed this share of this thread's time in split calls
// (sums decayed by STALL_DECAY per split call).
const STALL_SHARE = 0.25;
const STALL_DECAY = 1 - 1 / 32;
// Split sizes inside a hold window (measured: docs/benchmarks.md, "Two threads").
const HELD_MIN_FLOPS = 20_000_000;
const HELD_MIN_ELEMENTS = 131_072;

function defaultThreads(): number {
  return Math.max(1, Math.min(2, availableParallelism()));
}

export function createWasmKernels(options: WasmKernelOptions = {}): WasmKernels {
  const threads = options.threads ?? defaultThreads();
  if (threads !== 1 && threads !== 2)
    throw new RangeError(`wasm kernels: threads must be 1 or 2, got ${threads}`);
  // Only large calls are split (the fused cross-entropy, evaluation-size GEMMs and element-wise calls: ≥ ~2 ms
  // of one-thread work). Measured on the 2-vCPU VM (idle, 17:20 UTC): splitting every GEMM ≥ 4 MFLOP and
  // element-wise call ≥ 64k made the LRU step slower on 2 threads than on 1 (helper wake-ups on a halted vCPU,
  // B re-packed per chunk); splitting only calls ≥ 300 MFLOP / 16M elements made 2 threads beat 1 for the step
  // (ml 191 → 169–186 ms, amazon 180 → 125 ms) but left the ml validation pass on one thread (its layer GEMMs
  // are ~240 MFLOP, its GELU and recurrence calls ~1.9M elements: 2 threads ×0.91 of 1 in the idle run).
  // The training step's layer GEMMs (≤ ~75 MFLOP at ml) stay below these thresholds outside a hold window; a
  // training step or a validation pass runs in one (Kernels.hold), where the helper polls for calls and the
  // held sizes apply (docs/benchmarks.md, "Two threads").
  const baseMinFlops = options.parallelMinFlops ?? 150_000_000;
  const baseMinElements = options.parallelMinElements ?? 1_048_576;
  // Inside a hold window the helper is awake when a call arrives, so smaller calls pay.
  const heldMinFlops = options.heldMinFlops ?? HELD_MIN_FLOPS;
  const heldMinElements = options.heldMinElements ?? HELD_MIN_ELEMENTS;
  const holdIdleMs = options.holdIdleMs ?? 50;
  let holdDepth = 0;
  // In a hold window whose helper polls for calls, the smaller split sizes; else (no hold, or the helper was
  // preempted while polling: a busy machine, it sleeps between calls) the base ones.
  const hot = () => holdDepth > 0 && helper !== undefined && !helper.contended();
  const minFlops = () => (hot() ? Math.min(baseMinFlops, heldMinFlops) : baseMinFlops);
  const minElements = () => (hot() ? Math.min(baseMinElements, heldMinElements) : baseMinElements);
  const blockRows = options.ceBlockRows ?? 32;
  if (blockRows % 4 !== 0 || blockRows <= 0)
    throw new RangeError("ceBlockRows must be a positive multiple of 4");

  const variant = options.variant ?? (wasmRelaxedSimdSupported() ? "relaxed" : "simd");
  if (variant === "relaxed" && !wasmRelaxedSimdSupported()) {
    throw new Error("wasm kernels: relaxed SIMD is not supported by this runtime");
  }
  const module = wasmModule(variant);
  const memory = new WebAssemblyApi.Memory({ initial: 2, maximum: MAX_PAGES, shared: true });
  // native: the addon's functions overlay the wasm exports of the same names (here and in the helper thread).
  const native = resolveNative(options.native, variant);
  const wasmExports = new WebAssemblyApi.Instance(module, { env: { memory } }).exports;
  const ex = (native ? overlayNative(wasmExports, memory, native) : wasmExports) as unknown as Exports;
  const arena = new Arena(memory);
  const gemmWork = ex.gemmWorkBytes()!;
  let helper: KernelThread | undefined;
  let helperFailed = false;
  let helped = 0;

  function thread(): KernelThread | undefined {
    if (threads < 2 || helperFailed) return undefined;
    try {
      helper ??= new KernelThread(module, memory, EXPORTS, 20_000, spinMs, holdIdleMs, native?.path);
    } catch (err) {
      // Degrade to one thread rather than fail the computation.
      helperFailed = true;
      console.warn(`llamarec: kernel helper thread unavailable, using 1 thread (${(err as Error).message})`);
      return undefined;
    }
    return helper;
  }

  // Runs `name(...args)` here and, when `helperArgs` is given, offers the same call to the helper thread. Such
  // calls take their work from a shared counter, so whichever thread is free does the next piece.
  //
  // Automatic choice between one and two threads: a split pays only while the helper runs when asked. On a
  // machine with more runnable jobs than cores the helper is often descheduled while it holds a piece of
  // the work, and the caller then waits for it. A split whose caller waited for the helper's last piece longer
  // than `stallMs` and longer than it worked on the call itself is a stall. A stall stops splitting only when
  // the time spent waiting for the helper has become a sizeable share (STALL_SHARE) of the time this thread
  // worked on split calls (both decayed over the last ~32 splits): a helper preempted now and then for a time
  // slice costs a few ms, far less than backing off for hundreds of calls would (measured: docs/benchmarks.md,
  // "Two threads"). Backing off runs the next `backoffCalls` calls on this thread alone, then splitting is
  // tried again; back-offs in a row double the pause (up to 64×), so a persistently overloaded machine runs
  // on one thread with rare probes. Results never depend on this (every split call has a fixed decomposition
  // or per-element work).
  const stallMs = options.stallMs ?? 1;
  const spinMs = options.helperSpinMs ?? 0.25;
  const backoffCalls = options.backoffCalls ?? 32;
  let backoff = backoffCalls; // doubles with every back-off in a row (up to 64×), back to the base after a clean window
  let skipSplits = 0;
  let stalls = 0;
  let workedMs = 0; // this thread's time in split calls, decayed
  let waitedMs = 0; // time waited for the helper after this thread's share, decayed
  //
  // `pair`: helperArgs is the other, independent half of the work (no shared counter): the helper runs it
  // when it takes the post in time, else this thread runs it after its own half.
  function run(name: (typeof EXPORTS)[number], args: number[], helperArgs?: number[], pair = false): void {
    let t = helperArgs ? thread() : undefined;
    if (t && skipSplits > 0 && !options.helperFirst) {
      skipSplits--;
      t = undefined;
    }
    if (!t || !helperArgs) {
      ex[name](...args);
      if (pair && helperArgs) ex[name](...helperArgs);
      return;
    }
    t.post(name, helperArgs);
    let took = options.helperFirst === true && t.finish(true);
    let failure: unknown;
    const start = performance.now();
    try {
      ex[name](...args);
    } catch (err) {
      failure = err;
    }
    const mine = performance.now();
    if (t.finish()) took = true; // never return while the helper may still be writing into the arena
    if (took) helped++;
    const waited = performance.now() - mine;
    if (pair && !took && !failure) ex[name](...helperArgs);
    // Waiting longer than this thread worked on the whole call: the split did not pay. The helper's first
    // calls do not count: it starts cold (its first pieces run before its code and caches are warm).
    workedMs = workedMs * STALL_DECAY + (mine - start);
    waitedMs = waitedMs * STALL_DECAY + waited;
    if (!options.helperFirst && helped > WARM_CALLS && waited > stallMs && waited > mine - start) {
      stalls++;
      if (waitedMs > STALL_SHARE * workedMs) {
        skipSplits = backoff;
        backoff = Math.min(backoff * 2, backoffCalls * 64);
        waitedMs = 0;
      }
    } else if (waitedMs < 0.5 * STALL_SHARE * workedMs) {
      backoff = backoffCalls;
    }
    if (failure) throw failure;
  }

  /** A zeroed i32 work counter for one call. */
  function counter(): number {
    const p = arena.alloc(4);
    arena.i32(p, 1)[0] = 0;
    return p;
  }

  function gemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: Float32Array,
    B: Float32Array,
    beta: number,
    C: Float32Array,
    bias: Float32Array | null,
  ): void {
    need("gemm A", A, M * K);
    need("gemm B", B, K * N);
    need("gemm C", C, M * N);
    if (M === 0 || N === 0) return;
    arena.reset();
    const pA = arena.input(A, M * K);
    const pB = arena.input(B, K * N);
    const pC = arena.output(C, M * N, beta !== 0);
    // Zero-padded to whole 8-column tiles: the micro-kernel reads the bias 8 columns at a time.
    const pBias = bias ? arena.zeros(Math.ceil(N / 8) * 8) : 0;
    if (bias) arena.f32(pBias, N).set(bias.subarray(0, N));
    const w0 = arena.alloc(gemmWork);
    const tA = transA ? 1 : 0;
    const tB = transB ? 1 : 0;
    if (threads === 2 && 2 * M * N * K >= minFlops() && (M >= 8 || N >= 16)) {
      // Split the longer side into chunks at register-tile boundaries, taken dynamically by both threads:
      // ~8 for large calls, 4 for the mid-size calls of a hold window (each chunk packs the whole shared
      // operand again: a 2177 × 64 × 256 GEMM gained ×1.5–2.0 in 4 chunks against ×1.35–1.9 in 8).
      const splitM = M >= N;
      const parts = 2 * M * N * K >= baseMinFlops ? 8 : 4;
      const chunk = splitM ? Math.ceil(M / parts / 4) * 4 : Math.ceil(N / parts / 8) * 8;
      const pCounter = counter();
      const w1 = arena.alloc(gemmWork);
      const args = (w: number) => [
        tA,
        tB,
        M,
        N,
        K,
        alpha,
        pA,
        pB,
        beta,
        pC,
        splitM ? 1 : 0,
        chunk,
        pCounter,
        w,
        pBias,
      ];
      run("gemmShared", args(w0), args(w1));
    } else {
      run("gemm", [tA, tB, M, N, K, alpha, pA, pB, beta, pC, 0, M, 0, N, w0, pBias]);
    }
    arena.copyOut(C, pC, M * N);
  }

  const kernels: WasmKernels = {
    name: native ? "wasm+native" : "wasm",
    threads,
    variant,
    native: native !== undefined,

    gemm(transA, transB, M, N, K, alpha, A, B, beta, C) {
      gemm(transA, transB, M, N, K, alpha, A, B, beta, C, null);
    },

    linearForward(x, weight, bias, rows, inF, outF, out) {
      need("linearForward bias", bias, outF);
      if (inF === 0) {
        // No depth: the bias rows alone (the kernel's bias path needs a first depth block).
        for (let r = 0; r < rows; r++) out.set(bias.subarray(0, outF), r * outF);
        return;
      }
      gemm(false, true, rows, outF, inF, 1, x, weight, 0, out, bias);
    },

    linearCrossEntropy({ H, W, bias, labels, N, D, V, ignoreIndex, dH, dW, dBias }) {
      need("linearCrossEntropy H", H, N * D);
      need("linearCrossEntropy W", W, V * D);
      need("linearCrossEntropy labels", labels, N);
      if (bias) need("linearCrossEntropy bias", bias, V);
      if (dH) need("linearCrossEntropy dH", dH, N * D);
      if (dW) need("linearCrossEntropy dW", dW, V * D);
      if (dBias) need("linearCrossEntropy dBias", dBias, V);
      let count = 0;
      for (let n = 0; n < N; n++) {
        const label = labels[n]!;
        if (label === ignoreIndex) continue;
        if (label < 0 || label >= V)
          throw new RangeError(`label ${label} at row ${n} out of range [0, ${V})`);
        count++;
      }
      if (dH) dH.fill(0, 0, N * D);
      if (count === 0) return { loss: 0, count: 0 };

      arena.reset();
      const pRows = arena.alloc(count * 4);
      const pLabels = arena.alloc(count * 4);
      {
        const rows = arena.i32(pRows, count);
        const labs = arena.i32(pLabels, count);
        let i = 0;
        for (let n = 0; n < N; n++) {
          const label = labels[n]!;
          if (label === ignoreIndex) continue;
          rows[i] = n;
          labs[i++] = label;
        }
      }
      const Vp = Math.ceil(V / 8) * 8;
      const Dp = Math.ceil(D / 8) * 8;
      const pH = arena.input(H, N * D);
      const pW = arena.input(W, V * D);
      const pBias = bias ? arena.zeros(Vp) : 0; // zero-padded: the logits GEMM reads 8 columns at a time
      if (bias) arena.f32(pBias, V).set(bias.subarray(0, V));
      const pWpT = arena.alloc(Vp * D * 4);
      ex.packB!(1, pW, V, D, 0, V, 0, D, pWpT);
      const pWq = dH ? arena.alloc(Dp * V * 4) : 0;
      if (dH) ex.packB!(0, pW, D, V, 0, D, 0, V, pWq);
      const pdH = dH ? arena.output(dH, N * D, true) : 0; // zeroed above: ignored rows stay 0
      const pdW = dW ? arena.output(dW, V * D, true) : 0;
      const pdBias = dBias ? arena.output(dBias, V, true) : 0;
      const pStats = arena.alloc(count * 16);
      const workBytes = ex.ceWorkBytes!(blockRows, D, V);
      const w0 = arena.alloc(workBytes);
      const invCount = 1 / count;
      // Rows go in up to 8 parts; part 0 accumulates into dW/dBias, the others into zeroed partials added in
      // part order afterwards, so results do not depend on scheduling or on the thread count.
      const blocks = Math.ceil(count / blockRows);
      const partRows = Math.ceil(blocks / 8) * blockRows;
      const nParts = Math.ceil(count / partRows);
      const vd = V * D;
      const v4 = round4(V);
      // Zeroed by the kernel, part by part.
      const pdWParts = dW ? arena.alloc((nParts - 1) * vd * 4) : 0;
      const pdBiasParts = dBias ? arena.alloc((nParts - 1) * v4 * 4) : 0;
      const pCounter = counter();
      const args = (w: number) => [
        pH,
        D,
        V,
        pBias,
        pRows,
        pLabels,
        0,
        count,
        pWpT,
        pWq,
        invCount,
        pdH,
        pdW,
        pdBias,
        w,
        blockRows,
        pStats,
        pCounter,
        partRows,
        pdWParts,
        pdBiasParts,
      ];
      const split = threads === 2 && 6 * count * V * D >= minFlops() && nParts >= 2;
      run("linearCrossEntropy", args(w0), split ? args(arena.alloc(workBytes)) : undefined);
      if (nParts > 1) {
        // The partials, added in part order on both threads.
        if (dW) {
          const big = threads === 2 && (nParts - 1) * vd >= minElements();
          const chunk = big ? Math.ceil(vd / 16 / 4) * 4 : round4(vd);
          const a = [pdW, pdWParts, vd, nParts - 1, vd, chunk, counter()];
          run("addParts", a, big ? a : undefined);
        }
        if (dBias) ex.addParts!(pdBias, pdBiasParts, V, nParts - 1, v4, round4(V), counter());
      }
      const stats = arena.f64(pStats, 2 * count);
      let loss = 0;
      for (let i = 0; i < count; i++) loss += stats[2 * i]! + Math.log(stats[2 * i + 1]!);
      if (dH) arena.copyOut(dH, pdH, N * D);
      if (dW) arena.copyOut(dW, pdW, V * D);
      if (dBias) arena.copyOut(dBias, pdBias, V);
      return { loss, count };
    },

    layerNormForward(x, gamma, beta, rows, cols, eps, y, mean, rstd) {
      need("layerNorm x", x, rows * cols);
      need("layerNorm y", y, rows * cols);
      need("layerNorm gamma", gamma, cols);
      need("layerNorm beta", beta, cols);
      need("layerNorm mean", mean, rows);
      need("layerNorm rstd", rstd, rows);
      if (rows === 0) return;
      arena.reset();
      const px = arena.input(x, rows * cols);
      const pg = arena.input(gamma, cols);
      const pb = arena.input(beta, cols);
      const py = arena.output(y, rows * cols, false);
      const pm = arena.output(mean, rows, false);
      const pr = arena.output(rstd, rows, false);
      const split = threads === 2 && rows * cols >= minElements() && rows >= 2;
      const chunk = split ? Math.ceil(rows / 16) : rows;
      const args = [px, pg, pb, cols, eps, py, pm, pr, rows, chunk, counter()];
      run("layerNormForward", args, split ? args : undefined);
      arena.copyOut(y, py, rows * cols);
      arena.copyOut(mean, pm, rows);
      arena.copyOut(rstd, pr, rows);
    },

    layerNormBackward(dy, x, gamma, mean, rstd, rows, cols, dx, dGamma, dBeta) {
      need("layerNorm dy", dy, rows * cols);
      need("layerNorm x", x, rows * cols);
      need("layerNorm dx", dx, rows * cols);
      need("layerNorm gamma", gamma, cols);
      need("layerNorm dGamma", dGamma, cols);
      need("layerNorm dBeta", dBeta, cols);
      need("layerNorm mean", mean, rows);
      need("layerNorm rstd", rstd, rows);
      if (rows === 0) return;
      arena.reset();
      const pdy = arena.input(dy, rows * cols);
      const px = arena.input(x, rows * cols);
      const pg = arena.input(gamma, cols);
      const pm = arena.input(mean, rows);
      const pr = arena.input(rstd, rows);
      const pdx = arena.output(dx, rows * cols, false);
      const pdg = arena.output(dGamma, cols, true);
      const pdb = arena.output(dBeta, cols, true);
      // A fixed decomposition into parts with their own dGamma/dBeta partials, summed in part order: the
      // result is the same whichever thread ran which part, and with 1 or 2 threads.
      const parts = Math.min(16, rows);
      const chunk = Math.ceil(rows / parts);
      const nParts = Math.ceil(rows / chunk);
      const pdgParts = arena.zeros((nParts - 1) * round4(cols));
      const pdbParts = arena.zeros((nParts - 1) * round4(cols));
      const args = [pdy, px, pg, pm, pr, cols, pdx, pdg, pdb, rows, chunk, counter(), pdgParts, pdbParts];
      const split = threads === 2 && rows * cols >= minElements() && nParts >= 2;
      run("layerNormBackward", args, split ? args : undefined);
      for (let p = 1; p < nParts; p++) {
        ex.addInto!(pdg, pdgParts + (p - 1) * round4(cols) * 4, round4(cols));
        ex.addInto!(pdb, pdbParts + (p - 1) * round4(cols) * 4, round4(cols));
      }
      arena.copyOut(dx, pdx, rows * cols);
      arena.copyOut(dGamma, pdg, cols);
      arena.copyOut(dBeta, pdb, cols);
    },

    geluForward(x, y) {
      need("gelu y", y, x.length);
      elementwise("geluForward", [x], y);
    },

    geluBackward(dy, x, dx) {
      need("gelu dy", dy, x.length);
      need("gelu dx", dx, x.length);
      elementwise("geluBackward", [dy, x], dx);
    },

    addScaled(a, b, sign, out) {
      const n = a.length;
      need("addScaled b", b, n);
      need("addScaled out", out, n);
      if (n === 0) return;
      arena.reset();
      const pa = arena.input(a, n);
      const pb = arena.input(b, n);
      const n4 = round4(n);
      // Whole lanes are written: in place only when that stays inside out; element i is read before it is
      // written, so out may be a or b.
      const pOut =
        n !== n4 ? arena.alloc(n4 * 4) : out === a ? pa : out === b ? pb : arena.output(out, n, false);
      const split = threads === 2 && n >= minElements();
      const chunk = split ? Math.ceil(n4 / 32 / 4) * 4 : n4;
      const args = [pa, pb, sign, pOut, n4, chunk, counter()];
      run("addScaled", args, split ? args : undefined);
      arena.copyOut(out, pOut, n);
    },

    addColumnSums(g, rows, cols, gb) {
      need("addColumnSums g", g, rows * cols);
      need("addColumnSums gb", gb, cols);
      if (rows === 0 || cols === 0) return;
      arena.reset();
      const pg = arena.input(g, rows * cols);
      const pgb = arena.output(gb, cols, true);
      ex.addColumnSums!(pg, rows, cols, pgb);
      arena.copyOut(gb, pgb, cols);
    },

    dropout(src, dst, addend, p, mode, state) {
      const n = src.length;
      need("dropout dst", dst, n);
      if (addend) need("dropout addend", addend, n);
      arena.reset();
      const pState = arena.alloc(16);
      const words = arena.i32(pState, 4);
      for (let i = 0; i < 4; i++) words[i] = state[i]! | 0;
      if (n > 0) {
        const pSrc = arena.input(src, n);
        const pAdd = addend ? arena.input(addend, n) : 0;
        // Element i is read before it is written: dst may be src itself.
        const pDst = dst === src ? pSrc : arena.output(dst, n, mode === 1);
        ex.dropout!(pSrc, pDst, pAdd, n, Math.round(p * 65536), 1 / (1 - p), mode, pState);
        arena.copyOut(dst, pDst, n);
      }
      for (let i = 0; i < 4; i++) state[i] = words[i]! >>> 0;
    },

    recurrenceForward(h, lambda, seqs, C) {
      const rows = seqs.mask.length;
      need("recurrenceForward h", h, rows * 2 * C);
      need("recurrenceForward lambda", lambda, 2 * C);
      if (rows === 0 || C % 2 !== 0) throw new RangeError("recurrenceForward: needs rows and an even C");
      arena.reset();
      const ph = arena.output(h, rows * 2 * C, true);
      const common = recurrenceOperands(lambda, seqs);
      const split = threads === 2 && rows * 2 * C >= minElements() && seqs.run.length >= 2;
      const chunk = split ? Math.ceil(seqs.run.length / 16) : seqs.run.length;
      const args = [ph, ...common, C, chunk, counter()];
      run("recurrenceForward", args, split ? args : undefined);
      arena.copyOut(h, ph, rows * 2 * C);
    },

    recurrenceBackward(g, h, lambda, seqs, C, gLam) {
      const rows = seqs.mask.length;
      need("recurrenceBackward g", g, rows * 2 * C);
      need("recurrenceBackward h", h, rows * 2 * C);
      need("recurrenceBackward gLam", gLam, 2 * C);
      if (rows === 0 || C % 2 !== 0) throw new RangeError("recurrenceBackward: needs rows and an even C");
      arena.reset();
      const phIn = arena.input(h, rows * 2 * C);
      const pg = arena.output(g, rows * 2 * C, true);
      const common = recurrenceOperands(lambda, seqs);
      const split = threads === 2 && rows * 2 * C >= minElements() && seqs.run.length >= 2;
      const chunk = split ? Math.ceil(seqs.run.length / 16) : seqs.run.length;
      const args = [pg, ...common, C, chunk, counter()];
      run("recurrenceBackward", args, split ? args : undefined);
      const pLam = arena.alloc(2 * C * 8);
      const lam64 = arena.f64(pLam, 2 * C);
      lam64.set(gLam);
      // [mask, rowStart, length, run, numSeq] of the common operands (not λ).
      ex.recurrenceLambdaGrad!(pg, phIn, ...common.slice(1), C, pLam);
      gLam.set(arena.f64(pLam, 2 * C));
      arena.copyOut(g, pg, rows * 2 * C);
    },

    adamw(params, hyper) {
      if (params.length === 0) return;
      arena.reset();
      let total = 0;
      for (const q of params) total += q.p.length;
      // Every element is updated on its own, so the parameters can be cut into two halves of about the same
      // size, one per thread, with the same bits. A cut inside a parameter falls on a multiple of 8 elements
      // from its start: every element then takes the same vector or tail path of the kernel (wasm f64x2,
      // native 4 lanes) as in one piece, at the same alignment.
      const split = threads === 2 && total >= minElements();
      const half = split ? Math.ceil(total / 2) : total;
      const pTable = arena.alloc((params.length + 1) * 64);
      const table = arena.f64(pTable, (params.length + 1) * 8);
      let rows = 0;
      let firstRows = -1; // table rows of the first half (−1: the cut is not placed yet)
      let at = 0;
      const ptrs = params.map((q) => {
        const n = q.p.length;
        need("adamw grad", q.grad, n);
        need("adamw m", q.m, n);
        need("adamw v", q.v, n);
        const pg = arena.input(q.grad, n);
        const pp = arena.output(q.p, n, true);
        const pm = arena.output(q.m, n, true);
        const pv = arena.output(q.v, n, true);
        const entry = (from: number, to: number) => {
          const o = from * 4;
          table.set(
            [pp + o, pg + o, pm + o, pv + o, to - from, q.decayFactor, q.stepSize, q.bc2Sqrt],
            rows * 8,
          );
          rows++;
        };
        const cut = firstRows < 0 && at + n > half ? Math.floor(Math.max(0, half - at) / 8) * 8 : -1;
        if (cut === 0) firstRows = rows; // the second half starts with this parameter
        if (cut > 0) {
          entry(0, cut); // the cut falls inside this parameter
          firstRows = rows;
          entry(cut, n);
        } else {
          entry(0, n);
        }
        at += n;
        return [pp, pm, pv] as const;
      });
      const h = [hyper.oneMinusBeta1, hyper.beta2, hyper.oneMinusBeta2, hyper.eps];
      if (split && firstRows > 0 && firstRows < rows) {
        run("adamw", [pTable, firstRows, ...h], [pTable + firstRows * 64, rows - firstRows, ...h], true);
      } else {
        ex.adamw!(pTable, rows, ...h);
      }
      params.forEach((q, i) => {
        const [pp, pm, pv] = ptrs[i]!;
        arena.copyOut(q.p, pp, q.p.length);
        arena.copyOut(q.m, pm, q.p.length);
        arena.copyOut(q.v, pv, q.p.length);
      });
    },

    // Gather/scatter move rows without arithmetic to speak of: copying the table into wasm would cost more than
    // the operation, so these stay in JS (typed-array row copies / adds).
    embeddingGather(table, ids, dim, out) {
      need("embeddingGather out", out, ids.length * dim);
      const rows = table.length / dim;
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        if (id < 0 || id >= rows)
          throw new RangeError(`embedding id ${id} at ${i} out of range [0, ${rows})`);
        out.set(table.subarray(id * dim, id * dim + dim), i * dim);
      }
    },

    embeddingScatterAdd(dOut, ids, dim, dTable) {
      need("embeddingScatterAdd dOut", dOut, ids.length * dim);
      const rows = dTable.length / dim;
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        if (id < 0 || id >= rows)
          throw new RangeError(`embedding id ${id} at ${i} out of range [0, ${rows})`);
        const dst = id * dim;
        const src = i * dim;
        for (let d = 0; d < dim; d++) dTable[dst + d] = dTable[dst + d]! + dOut[src + d]!;
      }
    },

    helperCalls() {
      return helped;
    },

    helperStalls() {
      return stalls;
    },

    helperSpinMs() {
      return helper?.spinMs() ?? 0;
    },

    helperPreemptions() {
      return helper?.preemptions() ?? 0;
    },

    helperSpinning() {
      return helper?.spinning() ?? false;
    },

    hold(on) {
      if (on) {
        if (holdDepth++ > 0) return;
        thread()?.hold(true);
      } else {
        if (holdDepth === 0 || --holdDepth > 0) return;
        helper?.hold(false);
      }
    },

    memoryBytes() {
      return memory.buffer.byteLength;
    },

    resident(n) {
      return arena.resident(n);
    },

    dispose() {
      holdDepth = 0;
      helper?.dispose();
      helper = undefined;
    },
  };

  /** λ, mask, rowStart, length, run flags (scratch copies) and the sequence count, as kernel arguments. */
  function recurrenceOperands(lambda: Float32Array, seqs: RecurrenceSequences): number[] {
    const numSeq = seqs.run.length;
    const pLam = arena.input(lambda, lambda.length);
    const pMask = arena.alloc(seqs.mask.length);
    new Uint8Array(memory.buffer, pMask, seqs.mask.length).set(seqs.mask);
    const pStart = arena.alloc(numSeq * 4);
    arena.i32(pStart, numSeq).set(seqs.rowStart.subarray(0, numSeq));
    const pLen = arena.alloc(numSeq * 4);
    arena.i32(pLen, numSeq).set(seqs.length.subarray(0, numSeq));
    const pRun = arena.alloc(numSeq * 4);
    const runs = arena.i32(pRun, numSeq);
    for (let i = 0; i < numSeq; i++) runs[i] = seqs.run[i]!;
    return [pLam, pMask, pStart, pLen, pRun, numSeq];
  }

  function elementwise(
    name: "geluForward" | "geluBackward",
    inputs: Float32Array[],
    out: Float32Array,
  ): void {
    const n = inputs[inputs.length - 1]!.length;
    if (n === 0) return;
    arena.reset();
    const ptrs = inputs.map((a) => arena.input(a, n));
    const n4 = round4(n);
    // The kernel writes whole v128 lanes: in place only when that stays inside the output.
    const pOut = n === n4 ? arena.output(out, n, false) : arena.alloc(n4 * 4);
    const split = threads === 2 && n >= minElements();
    const chunk = split ? Math.ceil(n4 / 64) * 4 : n4;
    const args = [...ptrs, pOut, n4, chunk, counter()];
    run(name, args, split ? args : undefined);
    arena.copyOut(out, pOut, n);
  }

  return kernels;
}
