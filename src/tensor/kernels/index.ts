import type { Kernels } from "./api.js";
import { referenceKernels } from "./reference.js";

export type { Kernels } from "./api.js";

// The active backend. Faster backends register themselves here once they are ready (see wasm.ts).
let active: Kernels = referenceKernels;

export function kernels(): Kernels {
  return active;
}

export function setKernels(backend: Kernels): void {
  active = backend;
}
