/**
 * Issue 7 §3: bad model files given to the llama.cpp backend are input errors with one line naming the file
 * (exit 2 in the CLI), not llama.cpp's log lines and a generic "Failed to load model" with a stack.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LlamaCppBackend } from "../../src/ranker/backends/llamacpp.js";
import { InputError } from "../../src/util/errors.js";
import { threadCount } from "../../src/util/threads.js";
import { TINY_LLAMA2_GGUF as TINY_GGUF } from "../llm/shared-model.js";

const dir = mkdtempSync(join(tmpdir(), "llamarec-cpp-input-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("llama.cpp backend: bad model files", () => {
  const bytes = readFileSync(TINY_GGUF);
  const cases: Array<[string, string, RegExp]> = [
    ["header cut", "head.gguf", /head\.gguf: truncated GGUF file/],
    ["tensor data cut", "data.gguf", /data\.gguf: tensor .* extends past the end of the file/],
    ["not GGUF", "text.gguf", /text\.gguf: not a GGUF file/],
    ["missing", "missing.gguf", /missing\.gguf: no such file/],
    ["a folder", ".", /is not a file/],
  ];
  writeFileSync(join(dir, "head.gguf"), bytes.subarray(0, 50_000));
  writeFileSync(join(dir, "data.gguf"), bytes.subarray(0, Math.floor(bytes.length * 0.9)));
  writeFileSync(join(dir, "text.gguf"), "hello, not a model\n");
  for (const [name, file, message] of cases) {
    it(`${name}: one-line InputError naming the file`, async () => {
      const err = await LlamaCppBackend.open({ modelPath: join(dir, file), threads: 1 }).catch((e) => e);
      expect(err).toBeInstanceOf(InputError);
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain("\n");
    });
  }
  it("a bad LoRA adapter file is named as the adapter", async () => {
    const err = await LlamaCppBackend.open({
      modelPath: TINY_GGUF,
      loraPath: join(dir, "text.gguf"),
      threads: 1,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/text\.gguf: not a GGUF file/);
  });
});

describe("threadCount: one thread setting (flag, else LLAMAREC_THREADS, else min(2, cores))", () => {
  it("takes the flag, then the environment, and refuses non-positive values", () => {
    expect(threadCount(3, { LLAMAREC_THREADS: "1" })).toBe(3);
    expect(threadCount(undefined, { LLAMAREC_THREADS: "1" })).toBe(1);
    expect(threadCount(undefined, { LLAMAREC_THREADS: "6" })).toBe(6);
    expect(threadCount(undefined, {})).toBeGreaterThanOrEqual(1);
    expect(threadCount(undefined, {})).toBeLessThanOrEqual(2);
    for (const bad of ["0", "-3", "two", "1.5"])
      expect(() => threadCount(undefined, { LLAMAREC_THREADS: bad })).toThrow(
        /LLAMAREC_THREADS must be a positive integer/,
      );
    expect(() => threadCount(0)).toThrow(InputError);
  });
});
