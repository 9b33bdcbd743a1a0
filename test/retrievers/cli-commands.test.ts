import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { evalRunCommand } from "../../src/cli/commands/eval-run.js";
import { GROUPS } from "../../src/cli/commands/index.js";
import { trainRetrieverCommand } from "../../src/cli/commands/train-retriever.js";
import { EXIT_INPUT, EXIT_OK, runCli } from "../../src/cli/program.js";
import { generateSynthetic, writeSyntheticCsv } from "../../src/data/index.js";
import { runPaths } from "../../src/run/index.js";

let dir: string;
let files: { interactions: string; items: string };
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llamarec-retriever-cli-"));
  files = await writeSyntheticCsv(generateSynthetic({ numUsers: 40, numItems: 60, seed: 3 }), dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(argv: string[]) {
  let out = "";
  let err = "";
  const stream = (append: (s: string) => void) =>
    ({
      write: (s: string) => {
        append(s);
        return true;
      },
    }) as unknown as NodeJS.WritableStream;
  const code = await runCli(argv, [trainRetrieverCommand, evalRunCommand], GROUPS, {
    stdout: stream((s) => {
      out += s;
    }),
    stderr: stream((s) => {
      err += s;
    }),
  });
  return { code, out, err };
}

describe("llamarec train retriever / eval", () => {
  const data = () => [
    "--format",
    "generic",
    "--ratings",
    files.interactions,
    "--items",
    files.items,
    "--no-cache",
  ];
  const small = ["--max-iterations", "30", "--val-every", "10", "--batch-size", "8", "--max-len", "20"];

  it("trains into the run folder and eval reproduces its metrics", async () => {
    const runDir = join(dir, "runs", "pop1");
    const train = await run([
      "train",
      "retriever",
      "--model",
      "pop",
      ...data(),
      "--run",
      runDir,
      ...small,
      "-q",
    ]);
    expect(train.err).toBe("");
    expect(train.code).toBe(EXIT_OK);
    expect(train.out).toMatch(/stopped: max-iterations after 30 iterations/);
    expect(train.out).toMatch(/test labels in the top 20: \d+\/40/);
    expect(existsSync(runPaths(runDir).config)).toBe(true);
    for (const f of ["model", "modelJson", "trainLog", "metrics", "candidates"] as const) {
      expect(existsSync(runPaths(runDir).retriever[f])).toBe(true);
    }
    const evaluated = await run(["eval", runDir, "-q"]);
    expect(evaluated.code).toBe(EXIT_OK);
    expect(evaluated.out).toMatch(/test \(40 users\): Recall@1 /);
    expect(evaluated.out).toMatch(/identical to metrics\.json/);
    expect(evaluated.out).toMatch(/history excluded: full/);
    // Another exclusion: other numbers (nothing removed lets the history outrank the labels), not compared.
    const unmasked = await run(["eval", runDir, "--exclude", "none", "-q"]);
    expect(unmasked.code).toBe(EXIT_OK);
    expect(unmasked.out).toMatch(/history excluded: none/);
    expect(unmasked.out).toMatch(/not compared with metrics\.json/);
    const testLine = (out: string) => out.split("\n").find((l) => l.startsWith("test ("));
    expect(testLine(unmasked.out)).toMatch(/Recall@1 /);
    expect(testLine(unmasked.out)).not.toBe(testLine(evaluated.out));
    const bad = await run(["eval", runDir, "--exclude", "window"]);
    expect(bad.code).toBe(EXIT_INPUT);
    expect(bad.err).toMatch(/--exclude must be one of input, full, none, got "window"/);
    // A finished run resumes straight to its final evaluation, loading the data and the model it recorded
    // (no --model: not the default lru).
    const resumed = await run(["train", "retriever", "--run", runDir, "--resume", "-q"]);
    expect(resumed.code).toBe(EXIT_OK);
    expect(resumed.out).toMatch(/after 30 iterations/);
  });

  it("rejects --resume without --run and an unknown model with a clear message", async () => {
    const a = await run(["train", "retriever", "--model", "pop", ...data(), "--resume"]);
    expect(a.code).toBe(EXIT_INPUT);
    expect(a.err).toMatch(/--resume needs --run/);
    const b = await run(["train", "retriever", "--model", "nope", ...data(), "--run", join(dir, "x")]);
    expect(b.code).toBe(EXIT_INPUT);
    expect(b.err).toMatch(/unknown retriever model "nope"/);
    expect(b.err.trim().split("\n")).toHaveLength(1); // refused before the data is loaded
  });
});
