import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { kernelsFromEnv } from "../../../src/tensor/kernels/index.js";
import type { WasmKernels } from "../../../src/tensor/kernels/wasm.js";

describe("backend selection", () => {
  it("defaults to wasm (with the native kernels when they are built)", () => {
    const k = kernelsFromEnv({}) as WasmKernels;
    expect(k.name).toBe(k.native ? "wasm+native" : "wasm");
    expect((kernelsFromEnv({ LLAMAREC_KERNELS: "wasm" }) as WasmKernels).name).toBe("wasm");
    expect([1, 2]).toContain(k.threads);
  });

  it("LLAMAREC_KERNELS=reference selects the oracle", () => {
    expect(kernelsFromEnv({ LLAMAREC_KERNELS: "reference" }).name).toBe("reference");
  });

  it("LLAMAREC_THREADS sets the thread count", () => {
    expect((kernelsFromEnv({ LLAMAREC_THREADS: "1" }) as WasmKernels).threads).toBe(1);
    expect((kernelsFromEnv({ LLAMAREC_THREADS: "2" }) as WasmKernels).threads).toBe(2);
    // One setting for the whole tool: llama.cpp may use more; the kernels use at most 2.
    expect((kernelsFromEnv({ LLAMAREC_THREADS: "4" }) as WasmKernels).threads).toBe(2);
  });

  it("rejects unknown values with a message naming the variable", () => {
    expect(() => kernelsFromEnv({ LLAMAREC_KERNELS: "cuda" })).toThrow(/LLAMAREC_KERNELS must be/);
    expect(() => kernelsFromEnv({ LLAMAREC_THREADS: "0" })).toThrow(
      /LLAMAREC_THREADS must be a positive integer/,
    );
  });
});

describe("helper thread", () => {
  it("does not keep the process alive after a two-thread call (no dispose)", () => {
    const dir = mkdtempSync(join(tmpdir(), "llamarec-kernels-"));
    const script = join(dir, "exit.ts");
    const wasmUrl = pathToFileURL(resolve("src/tensor/kernels/wasm.ts")).href;
    writeFileSync(
      script,
      [
        `import { createWasmKernels } from ${JSON.stringify(wasmUrl)};`,
        "const k = createWasmKernels({ threads: 2, parallelMinFlops: 1 });",
        "const c = new Float32Array(64 * 64);",
        "k.gemm(false, false, 64, 64, 64, 1, new Float32Array(4096).fill(1), new Float32Array(4096).fill(1), 0, c);",
        "console.log(c[0], c[4095]);",
      ].join("\n"),
    );
    const res = spawnSync(process.execPath, ["--import", "tsx", script], {
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(res.error).toBeUndefined();
    expect(res.stderr).toBe("");
    expect(res.status).toBe(0);
    expect(res.stdout.trim()).toBe("64 64");
  });
});
