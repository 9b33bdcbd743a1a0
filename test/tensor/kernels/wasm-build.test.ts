import { describe, expect, it } from "vitest";
import { compileKernelsWasm, renderGeneratedModule } from "../../../src/tensor/kernels/wasm-build.js";
import {
  KERNELS_RELAXED_WASM_BASE64,
  KERNELS_SIMD_WASM_BASE64,
} from "../../../src/tensor/kernels/wasm-bytes.generated.js";

describe("generated wasm module", () => {
  it("is current with assembly/kernels.ts (else run `npm run build:wasm` and commit)", async () => {
    const simd = await compileKernelsWasm("simd");
    expect(Buffer.from(simd).toString("base64")).toBe(KERNELS_SIMD_WASM_BASE64);
    const relaxed = await compileKernelsWasm("relaxed");
    expect(Buffer.from(relaxed).toString("base64")).toBe(KERNELS_RELAXED_WASM_BASE64);
  });

  it("round-trips bytes through the generated source", () => {
    const bytes = Uint8Array.from({ length: 301 }, (_, i) => (i * 37) % 256);
    const src = renderGeneratedModule(bytes, bytes.slice(0, 7));
    const match = /\[\n([\s\S]*?)\n\]\.join/.exec(src);
    expect(match).not.toBeNull();
    const b64 = match![1]!
      .split("\n")
      .map((line) => line.trim().replace(/^"|",$/g, ""))
      .join("");
    expect(Buffer.from(b64, "base64")).toEqual(Buffer.from(bytes));
  });
});
