import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHECKPOINT_FILE, loadCheckpoint } from "../../src/retrievers/checkpoint.js";
import { evaluateRun } from "../../src/retrievers/run-evaluation.js";
import { trainRetriever } from "../../src/retrievers/trainer.js";
import { runPaths } from "../../src/run/index.js";
import { setLogLevel } from "../../src/util/log.js";
import { skewedDataset } from "./fixtures.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "llamarec-resume-"));
  setLogLevel("error");
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  setLogLevel("info");
});

const dataset = skewedDataset(60, 80, 6, 20);
const training = {
  batchSize: 8,
  maxLen: 12,
  valEvery: 10,
  patience: 100,
  maxIterations: 300,
  evalBatchSize: 16,
  logEvery: 5,
};

/** Everything a run produced that must not depend on interruptions (wall times removed). */
function outputs(runDir: string) {
  const p = runPaths(runDir);
  const metrics = JSON.parse(readFileSync(p.retriever.metrics, "utf8"));
  delete metrics.selection.trainingSeconds;
  const log = readFileSync(p.retriever.trainLog, "utf8")
    .trim()
    .split("\n")
    .map((l) => {
      const { elapsed: _e, ...rest } = JSON.parse(l);
      return rest;
    });
  return {
    metrics,
    log,
    model: readFileSync(p.retriever.model).toString("base64"),
    candidates: readFileSync(p.retriever.candidates, "utf8"),
  };
}

const checkpointPath = (runDir: string) => join(runPaths(runDir).retriever.checkpointDir, CHECKPOINT_FILE);

describe("checkpoint and resume", () => {
  let reference: ReturnType<typeof outputs>;
  beforeAll(async () => {
    const runDir = join(dir, "uninterrupted");
    await trainRetriever({ dataset, model: "pop", training, runDir });
    reference = outputs(runDir);
  });

  it("an interrupted run resumed from its last checkpoint ends exactly like an uninterrupted one", async () => {
    const runDir = join(dir, "interrupted");
    await expect(
      trainRetriever({
        dataset,
        model: "pop",
        training,
        runDir,
        onIteration: (i) => {
          if (i === 137) throw new Error("simulated crash");
        },
      }),
    ).rejects.toThrow("simulated crash");
    // The checkpoint is the validation before the crash; the log still has lines past it.
    expect(loadCheckpoint(checkpointPath(runDir)).state.iteration).toBe(130);
    expect(readFileSync(runPaths(runDir).retriever.trainLog, "utf8")).toContain('"iteration":135');
    // The unfinished run can be evaluated from its checkpoint's best weights.
    const partial = await evaluateRun(runDir, dataset, { checkpoint: true });
    const state = loadCheckpoint(checkpointPath(runDir)).state;
    expect(partial).toMatchObject({
      source: "checkpoint",
      iteration: state.bestIteration,
      matchesRecorded: null,
    });
    expect(partial.val.metrics["Recall@10"]).toBe(state.bestValue);
    await trainRetriever({ dataset, model: "pop", training, runDir, resume: true });
    expect(outputs(runDir)).toEqual(reference);
  });

  it("survives SIGKILL of the training process at an arbitrary moment", async () => {
    const runDir = join(dir, "killed");
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(import.meta.dirname, "kill-child.ts"), runDir, JSON.stringify(training)],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    // Kill once a few checkpoints exist, while training is still going.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (existsSync(checkpointPath(runDir)) && loadCheckpoint(checkpointPath(runDir)).state.iteration >= 40)
        break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 37));
    child.kill("SIGKILL");
    expect(await exited, stderr).toBeNull();
    expect(existsSync(runPaths(runDir).retriever.metrics)).toBe(false);
    await trainRetriever({ dataset, model: "pop", training, runDir, resume: true });
    expect(outputs(runDir)).toEqual(reference);
  });

  it("a torn temp file from a kill during a checkpoint write does not affect the checkpoint", async () => {
    const runDir = join(dir, "torn");
    await expect(
      trainRetriever({
        dataset,
        model: "pop",
        training,
        runDir,
        onIteration: (i) => {
          if (i === 65) throw new Error("simulated crash");
        },
      }),
    ).rejects.toThrow("simulated crash");
    const ckpt = checkpointPath(runDir);
    const before = readFileSync(ckpt);
    writeFileSync(`${ckpt}.999.deadbeef.tmp`, before.subarray(0, before.length >> 1));
    expect(loadCheckpoint(ckpt).state.iteration).toBe(60);
    await trainRetriever({ dataset, model: "pop", training, runDir, resume: true });
    expect(outputs(runDir)).toEqual(reference);
    expect(
      readdirSync(runPaths(runDir).retriever.checkpointDir).filter(
        (f) => f.endsWith(".tmp") && !f.includes("deadbeef"),
      ),
    ).toEqual([]);
  });

  it("a truncated checkpoint is reported, not loaded", () => {
    const path = join(dir, "truncated.safetensors");
    const good = readFileSync(checkpointPath(join(dir, "uninterrupted")));
    writeFileSync(path, good.subarray(0, good.length - 100));
    expect(() => loadCheckpoint(path)).toThrow(/truncated\.safetensors/);
  });

  it("resume refuses different explicit settings", async () => {
    await expect(
      trainRetriever({
        dataset,
        model: "pop",
        training: { ...training, lr: 0.01 },
        runDir: join(dir, "uninterrupted"),
        resume: true,
      }),
    ).rejects.toThrow(/different settings: lr/);
  });
});
