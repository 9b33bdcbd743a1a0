// The ranker commands through the CLI: synthetic CSV → pop retriever run → train ranker (scratch) → rank.
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMMANDS, GROUPS } from "../../../src/cli/commands/index.js";
import { rankCommand } from "../../../src/cli/commands/rank.js";
import { trainRankerCommand } from "../../../src/cli/commands/train-ranker.js";
import { runCli } from "../../../src/cli/program.js";
import { generateSynthetic, writeSyntheticCsv } from "../../../src/data/index.js";
import { writeTinyLlama } from "../../fixtures/tiny-llama.js";

function sink() {
  let text = "";
  return {
    stream: {
      write(s: string) {
        text += s;
        return true;
      },
    } as unknown as NodeJS.WritableStream,
    text: () => text,
  };
}

// The registry may still list planned stubs for these paths; ours replace them.
const commands = [
  ...COMMANDS.filter((c) => !["train ranker", "rank"].includes(c.path.join(" "))),
  trainRankerCommand,
  rankCommand,
];

async function cli(argv: string[]) {
  const out = sink();
  const err = sink();
  const code = await runCli(argv, commands, GROUPS, { stdout: out.stream, stderr: err.stream });
  return { code, out: out.text(), err: err.text() };
}

let dir = "";
let files: { interactions: string; items: string };
let tokenizer = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llamarec-ranker-cli-"));
  files = await writeSyntheticCsv(
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
  tokenizer = (await writeTinyLlama(join(dir, "base"), { seed: 2 })).gguf;
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("llamarec train ranker / rank", () => {
  it("runs the second stage on a retriever run and writes the ranker files", async () => {
    const run = join(dir, "run");
    const data = [
      "--format",
      "generic",
      "--ratings",
      files.interactions,
      "--items",
      files.items,
      "--no-cache",
    ];
    const retr = await cli([
      "train",
      "retriever",
      ...data,
      "--model",
      "pop",
      "--run",
      run,
      "--max-iterations",
      "1",
      "--val-every",
      "1",
    ]);
    expect(retr.code, retr.err).toBe(0);
    expect(existsSync(join(run, "retriever", "candidates.jsonl"))).toBe(true);

    const train = await cli([
      "train",
      "ranker",
      "--candidates",
      run,
      "--model",
      "scratch:tiny",
      "--tokenizer",
      tokenizer,
      "--steps",
      "2",
      "--batch-size",
      "2",
      "--val-every",
      "2",
      "--val-users",
      "5",
      "--max-history",
      "4",
      "--export-jsonl",
      join(dir, "export"),
    ]);
    expect(train.code, train.err).toBe(0);
    expect(train.out).toMatch(/trained 2\/2 steps \(4 examples\)/);
    expect(train.out).toMatch(/val \(\d+\/30 users in the top-20\): NDCG@10 ranker/);
    expect(existsSync(join(dir, "export", "train.jsonl"))).toBe(true);
    const cfg = JSON.parse(readFileSync(join(run, "ranker", "config.json"), "utf8"));
    expect(cfg.training.mode).toBe("full");
    expect(cfg.prompt.maxHistory).toBe(4);

    const rank = await cli(["rank", "--run", run, "--split", "test", "--orders", "2"]);
    expect(rank.code, rank.err).toBe(0);
    expect(rank.out).toMatch(/test \(\d+\/30 users/);
    const metrics = JSON.parse(readFileSync(join(run, "ranker", "metrics.json"), "utf8"));
    expect(metrics.orders).toBe(2);
    expect(Object.keys(metrics.splits)).toEqual(["test"]);
  }, 180_000);

  it("names the problem on bad input (exit 2)", async () => {
    const missing = await cli([
      "train",
      "ranker",
      "--candidates",
      join(dir, "nope"),
      "--model",
      "scratch:tiny",
    ]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/not a run folder/);
    const backend = await cli(["rank", "--run", join(dir, "run"), "--backend", "gpu"]);
    expect(backend.code).toBe(2);
    expect(backend.err).toMatch(/--backend must be one of engine, llamacpp, remote/);
    const letters = await cli(["rank", "--run", join(dir, "run"), "--letter-mode", "alone"]);
    expect(letters.code).toBe(2);
    expect(letters.err).toMatch(/--letter-mode must be answer-position or isolated, got "alone"/);
    const noTok = await cli([
      "train",
      "ranker",
      "--candidates",
      join(dir, "run"),
      "--model",
      "scratch:tiny",
      "--force",
    ]);
    expect(noTok.code).toBe(2);
    expect(noTok.err).toMatch(/needs a tokenizer/);
  }, 60_000);
});
