import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { WasmMemory } from "./wasm-api.js";

// The optional native backend of the wasm kernels: a Node-API addon (src/tensor/kernels/native/*.cc, built by
// scripts/build-native.mjs into build/native/) whose exports replace the hottest wasm exports with AVX2 + FMA
// code of the same names and arguments, over the same shared wasm memory, giving the same bits. Everything else
// (the arena, the helper thread, the split policy) is the wasm backend's: wasm.ts and wasm-thread.ts overlay the
// native functions on the instance exports at instantiation.
//
// Used when the addon is built and loads, the CPU has AVX2 and FMA, and the wasm variant is "relaxed" (the
// native code reproduces the fused multiply-adds of that build); LLAMAREC_KERNELS=wasm turns it off.

/** The wasm exports the addon replaces. */
export const NATIVE_EXPORTS = [
  "gemm",
  "gemmShared",
  "packB",
  "linearCrossEntropy",
  "geluForward",
  "geluBackward",
  "dropout",
  "recurrenceForward",
  "recurrenceBackward",
  "recurrenceLambdaGrad",
  "adamw",
  "layerNormForward",
  "layerNormBackward",
] as const;
export type NativeExport = (typeof NATIVE_EXPORTS)[number];
export type NativeFunctions = Record<NativeExport, (...args: number[]) => void>;

export interface NativeAddon {
  /** The CPU has AVX2 and FMA. */
  readonly supported: boolean;
  /** The kernels bound to the memory `view` lives in (any typed array over the shared buffer). */
  bind(view: Uint8Array): NativeFunctions;
  /** Address of the first byte of the memory `view` lives in. */
  address(view: ArrayBufferView): number;
}

export interface LoadedNative {
  readonly addon: NativeAddon;
  /** File the addon was loaded from (the helper thread loads the same one). */
  readonly path: string;
}

/** Where scripts/build-native.mjs writes the addon (the same from src/ under tsx and from dist/). */
export const NATIVE_ADDON_PATH = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "build",
  "native",
  "llamarec-kernels.node",
);

let cached: { loaded: LoadedNative } | { reason: string } | undefined;

/** Loads the addon once per process: the loaded addon, or why it is unavailable. */
export function loadNative(): { loaded: LoadedNative } | { reason: string } {
  cached ??= load();
  return cached;
}

function load(): { loaded: LoadedNative } | { reason: string } {
  const path = NATIVE_ADDON_PATH;
  if (process.arch !== "x64") return { reason: `they are x86-64 (AVX2) code, this is ${process.arch}` };
  if (!existsSync(path)) return { reason: `${path} is not built (npm run build)` };
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (err) {
    return { reason: `${path} does not load: ${(err as Error).message.split("\n")[0]}` };
  }
  if (!addon.supported) return { reason: "this CPU lacks AVX2 or FMA" };
  return { loaded: { addon, path } };
}

let warned = false;

/**
 * The native addon for a wasm backend being created, or undefined for pure wasm. `want`: true requires it
 * (throws when unavailable), false never uses it, undefined uses it when available unless LLAMAREC_KERNELS=wasm
 * (then an unavailable addon is reported once per process, as one console line).
 */
export function resolveNative(
  want: boolean | undefined,
  variant: "simd" | "relaxed",
  env: NodeJS.ProcessEnv = process.env,
): LoadedNative | undefined {
  if (want === false || (want === undefined && env.LLAMAREC_KERNELS === "wasm")) return undefined;
  // The baseline-SIMD build rounds the product before the add: only the relaxed build has the native bits.
  if (variant !== "relaxed") {
    if (want) throw new Error('native kernels: need the "relaxed" wasm variant (fused multiply-add)');
    return undefined;
  }
  const r = loadNative();
  if ("loaded" in r) return r.loaded;
  if (want) throw new Error(`native kernels unavailable: ${r.reason}`);
  if (!warned) {
    warned = true;
    console.warn(`llamarec: native kernels unavailable (${r.reason}); using the wasm kernels`);
  }
  return undefined;
}

/** `exports` with the native functions bound to `memory` in place of the wasm ones of the same names. */
export function overlayNative<T extends Record<string, unknown>>(
  exports: T,
  memory: WasmMemory,
  native: LoadedNative,
): T {
  return { ...exports, ...native.addon.bind(new Uint8Array(memory.buffer)) };
}
