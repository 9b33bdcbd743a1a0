// `llamarec run` end to end on a small synthetic dataset: kill -9 in every stage, then the same command
// finishes with the same final metrics as an uninterrupted run; a changed setting reruns only the stages
// that depend on it; a second run of a finished pipeline skips every stage.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSynthetic, writeSyntheticCsv } from "../../src/data/index.js";
import { runPipeline, STAGES } from "../../src/pipeline/run.js";
import type { PipelineSettings } from "../../src/pipeline/settings.js";
import { runPaths } from "../../src/run/index.js";
import { writeTinyLlama } from "../fixtures/tiny-llama.js";

const MAIN = join(import.meta.dirname, "..", "..", "src", "cli", "main.ts");
let dir: string;
let configFile: string;
let settings: PipelineSettings;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llamarec-pipeline-"));
  const data = generateSynthetic({ numUsers: 40, numItems: 80, numClusters: 4, seed: 5 });
  const files = await writeSyntheticCsv(data, dir);
  // A small vocabulary (568 pieces) keeps the scratch ranker fast; its letters and titles still tokenize.
  const tiny = await writeTinyLlama(join(dir, "tok"));
  const yaml = `
data:
  format: generic
  ratings: ${files.interactions}
  items: ${files.items}
  cache: false
retriever:
  maxLen: 20
  batchSize: 8
  maxIterations: 20
  valEvery: 5
  logEvery: 5
ranker:
  tokenizer: ${tiny.gguf}
  steps: 4
  batchSize: 2
  microBatchSize: 2
  valEvery: 2
  valUsers: 4
  logEvery: 1
  maxHistory: 5
`;
  configFile = join(dir, "run.yaml");
  await writeFile(configFile, yaml);
  settings = {
    profile: "test",
    data: {
      spec: { format: "generic", interactions: files.interactions, items: files.items },
      load: { noCache: true },
    },
    retriever: {
      model: "lru",
      modelOptions: {},
      training: { maxLen: 20, batchSize: 8, maxIterations: 20, valEvery: 5, logEvery: 5 },
    },
    ranker: {
      model: "scratch:tiny",
      tokenizer: tiny.gguf,
      training: {
        mode: "full",
        lr: 2e-3,
        warmupSteps: 2,
        batchSize: 2,
        microBatchSize: 2,
        maxSteps: 4,
        valEvery: 2,
        valUsers: 4,
        logEvery: 1,
      },
      prompt: { maxHistory: 5 },
    },
    rank: { backend: "engine" },
    report: { reference: null },
  };
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function cliChild(runDir: string): {
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr: () => string;
} {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", MAIN, "run", "--config", configFile, "--run", runDir, "-q"],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, LLAMAREC_THREADS: "1" } },
  );
  let stderr = "";
  child.stderr!.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

function stageStatus(runDir: string, stage: string): string | undefined {
  try {
    const config = JSON.parse(readFileSync(runPaths(runDir).config, "utf8"));
    return config.stages?.[stage]?.status;
  } catch {
    return undefined; // not written yet, or caught between write and rename
  }
}

function finalOutputs(runDir: string) {
  const p = runPaths(runDir);
  return {
    evaluation: JSON.parse(readFileSync(p.evaluation, "utf8")),
    candidates: readFileSync(p.retriever.candidates, "utf8"),
    ranked: readFileSync(p.ranker.ranked, "utf8"),
  };
}

describe("llamarec run", () => {
  it("kill -9 in any stage, then the same command: the same final metrics as an uninterrupted run", async () => {
    const reference = join(dir, "reference");
    const ref = cliChild(reference);
    expect(await ref.exited, ref.stderr()).toBe(0);
    const expected = finalOutputs(reference);
    expect(expected.evaluation.users).toBeGreaterThan(0);

    const killed = join(dir, "killed");
    let kills = 0;
    for (const stage of STAGES.slice(1)) {
      if (stageStatus(killed, "report") === "done") break;
      const c = cliChild(killed);
      // Kill as soon as the stage is under way (or, for a stage too quick to catch, at the next one).
      const deadline = Date.now() + 120_000;
      let exitCode: number | null | undefined;
      void c.exited.then((code) => {
        exitCode = code;
      });
      while (Date.now() < deadline && exitCode === undefined) {
        const s = stageStatus(killed, stage);
        if (s === "running" || s === "done") break;
        await new Promise((r) => setTimeout(r, 10));
      }
      if (exitCode !== undefined) break; // finished before we could kill it
      await new Promise((r) => setTimeout(r, 150));
      c.child.kill("SIGKILL");
      const code = await c.exited;
      if (code === null) kills++;
    }
    expect(kills).toBeGreaterThanOrEqual(3);
    const last = cliChild(killed);
    expect(await last.exited, last.stderr()).toBe(0);
    expect(finalOutputs(killed)).toEqual(expected);
  }, 600_000);

  it("skips finished stages and reruns only the stages a changed setting affects", async () => {
    const runDir = join(dir, "in-process");
    const first = await runPipeline({ runDir, settings });
    expect(first.stages.map((s) => s.action)).toEqual(STAGES.map(() => "ran"));
    for (const s of first.stages) {
      expect(s.wallSeconds).toBeGreaterThanOrEqual(0);
      expect(s.peakRssMiB).toBeGreaterThan(0);
    }
    expect(existsSync(runPaths(runDir).report.markdown)).toBe(true);

    const again = await runPipeline({ runDir, settings });
    expect(again.stages.map((s) => s.action)).toEqual(STAGES.map(() => "skipped"));
    expect(again.evaluation).toEqual(first.evaluation);

    const changed: PipelineSettings = {
      ...settings,
      rank: { ...settings.rank, orders: 2 },
    };
    const third = await runPipeline({ runDir, settings: changed });
    expect(Object.fromEntries(third.stages.map((s) => [s.stage, s.action]))).toEqual({
      data: "skipped",
      retriever: "skipped",
      candidates: "skipped",
      ranker: "skipped",
      rank: "ran",
      evaluate: "ran",
      report: "ran",
    });
    // Back to the first settings: the rank stage runs again (its outputs were replaced), the rest is kept.
    const fourth = await runPipeline({ runDir, settings });
    expect(fourth.stages.find((s) => s.stage === "ranker")!.action).toBe("skipped");
    expect(fourth.stages.find((s) => s.stage === "rank")!.action).toBe("ran");
    expect(fourth.evaluation).toEqual(first.evaluation);
  }, 600_000);
});
