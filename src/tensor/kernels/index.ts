import { threadCount } from "../../util/threads.js";
import type { Kernels } from "./api.js";
import { referenceKernels } from "./reference.js";
import { createWasmKernels, wasmSimdSupported } from "./wasm.js";

export type { Kernels } from "./api.js";
export { referenceKernels } from "./reference.js";
export { createWasmKernels, type WasmKernelOptions, type WasmKernels, type WasmVariant } from "./wasm.js";

// The active backend, chosen on first use: wasm (SIMD, 1–2 threads) unless LLAMAREC_KERNELS=reference; its
// hottest kernels run as native AVX2 code (src/tensor/kernels/native.ts, same bits) when the addon is built and
// the CPU has AVX2 + FMA, unless LLAMAREC_KERNELS=wasm (LLAMAREC_KERNELS=native: required, an error if not).
// LLAMAREC_THREADS (the tool's one thread setting, src/util/threads.ts) sets the thread count, at most 2
// here (default min(2, available cores));
// LLAMAREC_WASM_SIMD=simd|relaxed picks the instruction set (default: relaxed when the runtime supports it).
let active: Kernels | undefined;

/** Builds the backend named by the environment (exported for tests). */
export function kernelsFromEnv(env: NodeJS.ProcessEnv = process.env): Kernels {
  const choice = env.LLAMAREC_KERNELS || undefined;
  if (choice === "reference") return referenceKernels;
  if (choice !== undefined && choice !== "wasm" && choice !== "native")
    throw new Error(`LLAMAREC_KERNELS must be "reference", "wasm" or "native", got "${choice}"`);
  const threads = Math.min(2, threadCount(undefined, env));
  const variant = env.LLAMAREC_WASM_SIMD || undefined;
  if (variant !== undefined && variant !== "simd" && variant !== "relaxed") {
    throw new Error(`LLAMAREC_WASM_SIMD must be "simd" or "relaxed", got "${variant}"`);
  }
  if (!wasmSimdSupported()) {
    console.warn(
      "llamarec: WebAssembly SIMD is unavailable here; falling back to the slow reference kernels",
    );
    return referenceKernels;
  }
  const native = choice === "native" ? true : choice === "wasm" ? false : undefined;
  return createWasmKernels({ threads, variant, native });
}

export function kernels(): Kernels {
  active ??= kernelsFromEnv();
  return active;
}

export function setKernels(backend: Kernels): void {
  active = backend;
}
