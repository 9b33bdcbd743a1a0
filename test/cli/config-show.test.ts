import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { EXIT_INPUT, EXIT_OK } from "../../src/cli/program.js";
import { runCaptured } from "./capture.js";

const dir = mkdtempSync(join(tmpdir(), "llamarec-config-show-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("llamarec config show", () => {
  it("prints every section with defaults, keeping the file's values", async () => {
    const cfg = join(dir, "c.yaml");
    writeFileSync(cfg, "data:\n  dataset: ml-latest-small\neval:\n  ks: [10]\n");
    const r = await runCaptured(["config", "show", "--config", cfg]);
    expect(r.code).toBe(EXIT_OK);
    const shown = parse(r.out);
    expect(shown.data).toEqual({ dataset: "ml-latest-small" });
    expect(shown.eval).toEqual({ ks: [10], tie: "pessimistic", exclude: "full", numCandidates: 20 });
  });

  it("lists the retriever and ranker keys without defaults as comments, and reads its own output back", async () => {
    const r = await runCaptured(["config", "show"]);
    expect(r.code).toBe(EXIT_OK);
    for (const key of ["ranker", "retriever"]) expect(r.out).toMatch(new RegExp(`^${key}:`, "m"));
    for (const key of ["lr", "warmupSteps", "steps", "model", "tokenizer", "maxIterations", "dropout"])
      expect(r.out).toMatch(new RegExp(`^  # ${key}:$`, "m"));
    const again = join(dir, "shown.yaml");
    writeFileSync(again, r.out);
    const back = await runCaptured(["config", "show", "--config", again]);
    expect(back.code, back.err).toBe(EXIT_OK);
    expect(back.out).toBe(r.out);
  });

  it("fails on an invalid file", async () => {
    const cfg = join(dir, "bad.json");
    writeFileSync(cfg, JSON.stringify({ eval: { numCandidates: 0 } }));
    const r = await runCaptured(["config", "show", "--config", cfg]);
    expect(r.code).toBe(EXIT_INPUT);
    expect(r.err).toBe("error: bad.json: eval.numCandidates: expected a number > 0, got 0\n");
  });
});
