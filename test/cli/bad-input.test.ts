/**
 * Issue 7 §3, through the command line: every bad input is one line naming the problem with exit 2 (or a
 * documented safe behaviour), never a stack trace, a silent success or a silently wrong result.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_INPUT, EXIT_OK } from "../../src/cli/program.js";
import { generateSynthetic, writeSyntheticCsv } from "../../src/data/index.js";
import { evaluateRun } from "../../src/retrievers/run-evaluation.js";
import { makeEvents } from "../../src/util/events.js";
import { writeTinyLlama } from "../fixtures/tiny-llama.js";
import { TINY_LLAMA2_GGUF } from "../llm/shared-model.js";
import { runCaptured } from "./capture.js";

const dir = mkdtempSync(join(tmpdir(), "llamarec-bad-input-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Exit 2 with one error line (after any progress logs) matching `pattern`, and no stack trace. */
function expectOneLine(r: { code: number; err: string }, pattern: RegExp) {
  const errors = r.err.split("\n").filter((l) => l.startsWith("error: "));
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(pattern);
  expect(r.err.trim().split("\n").at(-1)).toBe(errors[0]);
  expect(r.err).not.toMatch(/\n\s+at /);
  expect(r.code).toBe(EXIT_INPUT);
}

let data: string[] = [];
let items = "";
const run = join(dir, "run");

beforeAll(async () => {
  const files = await writeSyntheticCsv(
    generateSynthetic({
      numUsers: 30,
      numItems: 40,
      numClusters: 4,
      minSeqLength: 8,
      maxSeqLength: 10,
      seed: 6,
    }),
    dir,
  );
  items = files.items;
  data = ["--format", "generic", "--ratings", files.interactions, "--items", files.items, "--no-cache"];
  const r = await runCaptured(["train", "retriever", ...data, "--model", "pop", "--run", run]);
  expect(r.code).toBe(EXIT_OK);
});

describe("data input", () => {
  it("non-UTF-8 bytes stop with file and line and suggest --encoding latin1; latin1 keeps 3 users apart", async () => {
    // Three users whose ids differ only in a Latin-1 letter: decoded as UTF-8 they would merge.
    const rows = ["user,item,timestamp"];
    for (const [u, name] of [
      [0xe9, "Jos\u00e9"],
      [0xe8, "Jos\u00e8"],
      [0xea, "Jos\u00ea"],
    ] as const) {
      void name;
      for (let i = 1; i <= 6; i++) rows.push(`Jos${String.fromCharCode(u)},${i},${i}`);
    }
    const path = join(dir, "latin1.csv");
    writeFileSync(path, Buffer.from(`${rows.join("\n")}\n`, "latin1"));
    const args = [
      "data",
      "stats",
      "--format",
      "generic",
      "--ratings",
      path,
      "--items",
      items,
      "--no-cache",
      "--min-uc",
      "2",
      "--min-sc",
      "2",
    ];
    const bad = await runCaptured(args);
    expectOneLine(bad, /latin1\.csv:2: not valid UTF-8 \(byte 0xE9\).*--encoding latin1/);
    const ok = await runCaptured([...args, "--encoding", "latin1"]);
    expect(ok.code).toBe(EXIT_OK);
    expect(ok.out).toMatch(/\|\s+3 \|/); // 3 users
  });

  it("a folder given as --ratings is named as a folder, not 'not found'", async () => {
    expectOneLine(
      await runCaptured(["data", "stats", "--format", "generic", "--ratings", dir, "--items", items]),
      /is a folder/,
    );
  });

  it("data prepare --out <an existing file>", async () => {
    const file = join(dir, "a-file");
    writeFileSync(file, "x\n");
    expectOneLine(
      await runCaptured(["data", "prepare", ...data, "--out", file]),
      /a-file is a file; the export needs a folder/,
    );
  });
});

describe("runs and flags", () => {
  it("--runs-dir <a file>", async () => {
    const file = join(dir, "runs-file");
    writeFileSync(file, "x\n");
    expectOneLine(
      await runCaptured(["rank", "--run", "x", "--runs-dir", file]),
      /--runs-dir .*runs-file is a file, not a folder/,
    );
    expectOneLine(
      await runCaptured(["train", "retriever", ...data, "--model", "pop", "--run", "x", "--runs-dir", file]),
      /is a file, not a folder/,
    );
  });

  it("eval shows progress while it scores (issue 7 §4: it printed nothing for seconds)", async () => {
    const r = await runCaptured(["eval", run]);
    expect(r.code, r.err).toBe(EXIT_OK);
    // The command renders these events on the terminal (consoleEvents); here they are recorded.
    const seen: string[] = [];
    await evaluateRun(run, undefined, {
      events: makeEvents({ progress: (e) => seen.push(`${e.task} ${e.done}/${e.total}`) }),
    });
    expect(seen).toContain("evaluating val 30/30");
    expect(seen).toContain("evaluating test 30/30");
  });

  it("train retriever --resume of a run that does not exist", async () => {
    expectOneLine(
      await runCaptured([
        "train",
        "retriever",
        ...data,
        "--model",
        "pop",
        "--run",
        join(dir, "typo"),
        "--resume",
      ]),
      /--resume: there is no run at .*typo/,
    );
  });

  it("rank --orders 0, --threads 0, --threads -3", async () => {
    for (const flags of [
      ["--orders", "0"],
      ["--threads", "0"],
      ["--threads", "-3"],
    ]) {
      const r = await runCaptured(["rank", "--run", run, ...flags]);
      expect(r.code).toBe(EXIT_INPUT);
      expect(r.err).toMatch(new RegExp(`${flags[0]}.*expected a positive integer`));
    }
  });

  it("serve --threads 0, --sequences 0, --max-queue -1", async () => {
    for (const flags of [
      ["--threads", "0"],
      ["--sequences", "0"],
      ["--max-queue", "-1"],
    ]) {
      const r = await runCaptured(["serve", "--run", run, ...flags]);
      expect(r.code).toBe(EXIT_INPUT);
      expect(r.err).toMatch(new RegExp(`${flags[0]}.*expected a positive integer`));
    }
  });

  it("remote backend at an unreachable URL", async () => {
    const r = await runCaptured([
      "rank",
      "--run",
      run,
      "--backend",
      "remote",
      "--url",
      "http://127.0.0.1:1",
      "--model",
      TINY_LLAMA2_GGUF,
      "--timeout-ms",
      "2000",
    ]);
    expectOneLine(r, /http:\/\/127\.0\.0\.1:1\/v1\/completions: fetch failed/);
  }, 60_000);
});

describe("ranker runs", () => {
  let base = "";
  const lora = join(dir, "lora-run");
  const ranker = (...extra: string[]) => [
    "train",
    "ranker",
    "--candidates",
    lora,
    "--steps",
    "1",
    "--batch-size",
    "2",
    "--val-every",
    "1",
    "--val-users",
    "3",
    "--max-history",
    "4",
    "--no-rank",
    ...extra,
  ];
  beforeAll(async () => {
    base = (await writeTinyLlama(join(dir, "base"), { seed: 2 })).gguf;
    const r = await runCaptured(["train", "retriever", ...data, "--model", "pop", "--run", lora]);
    expect(r.code).toBe(EXIT_OK);
    const t = await runCaptured(ranker("--model", base));
    expect(t.code, t.err).toBe(EXIT_OK);
  }, 180_000);

  it("records the base model as an absolute path with its hash", () => {
    const cfg = JSON.parse(readFileSync(join(lora, "ranker", "config.json"), "utf8"));
    expect(isAbsolute(cfg.model)).toBe(true);
    expect(cfg.modelHash).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("train ranker refuses to overwrite a trained ranker; --force replaces it and leaves no stale rankings", async () => {
    expectOneLine(await runCaptured(ranker("--model", base)), /already has a trained ranker.*--force/);
    writeFileSync(join(lora, "ranker", "ranked.jsonl"), "stale\n");
    writeFileSync(join(lora, "ranker", "metrics.json"), "{}\n");
    const forced = await runCaptured(ranker("--model", base, "--force"));
    expect(forced.code, forced.err).toBe(EXIT_OK);
    expect(existsSync(join(lora, "ranker", "ranked.jsonl"))).toBe(false);
    expect(existsSync(join(lora, "ranker", "metrics.json"))).toBe(false);
    expect(existsSync(join(lora, "ranker", "adapter.gguf"))).toBe(true);
  }, 180_000);

  it("train ranker --resume reads the model and settings from the run (no flags repeated)", async () => {
    const r = await runCaptured(["train", "ranker", "--candidates", lora, "--resume", "--no-rank"]);
    expect(r.code, r.err).toBe(EXIT_OK);
    const differs = await runCaptured(["train", "ranker", "--candidates", lora, "--resume", "--lr", "0.5"]);
    expectOneLine(differs, /cannot resume .*training settings differ/);
    expectOneLine(
      await runCaptured(["train", "ranker", "--candidates", run, "--resume"]),
      /--resume: .* has no ranker to continue/,
    );
  }, 180_000);

  it("rank refuses a changed base model and a deleted adapter", async () => {
    const bytes = readFileSync(base);
    try {
      writeFileSync(base, Buffer.concat([bytes, Buffer.alloc(8)]));
      expectOneLine(
        await runCaptured(["rank", "--run", lora, "--split", "test"]),
        /changed since the ranker .* was trained on it/,
      );
    } finally {
      writeFileSync(base, bytes);
    }
    rmSync(join(lora, "ranker", "adapter"), { recursive: true, force: true });
    expectOneLine(
      await runCaptured(["rank", "--run", lora, "--split", "test"]),
      /the trained LoRA adapter .*adapter is missing.*--adapter none/,
    );
    const bare = await runCaptured(["rank", "--run", lora, "--split", "test", "--adapter", "none"]);
    expect(bare.code, bare.err).toBe(EXIT_OK);
  }, 180_000);
});
