/**
 * The remote backend against a real llama.cpp `llama-server` (built from the llama.cpp source that
 * node-llama-cpp ships, by scripts/build-llama-server.sh; reused when already built, built here otherwise),
 * started on 127.0.0.1 on a free port: for every prompt, the 20 letter log-probabilities equal in-process
 * llama.cpp's (node-llama-cpp) within 1e-3, both ways of getting all 20 letters back: the same logit bias on
 * every letter (post-bias probabilities) and n_probs = the whole vocabulary. Both sides use an F32 KV cache
 * and no flash attention, so they compute the same thing.
 * Two models: the bundled tiny Llama 2 GGUF (real 32k tokenizer; d 8, one layer, so every ranking prompt
 * gets the same letter distribution from it), and a random Llama written here (d 64, 2 layers, std 0.2)
 * whose answers differ between the prompts, so a server or backend that mixed prompts up would fail.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GgufModel } from "../../src/llm/gguf/model.js";
import { writeLlamaGguf } from "../../src/llm/model/gguf-export.js";
import { tokenizerFromGguf } from "../../src/llm/tokenizer/gguf.js";
import type { PromptIds } from "../../src/ranker/backend.js";
import { LlamaCppBackend } from "../../src/ranker/backends/llamacpp.js";
import { RemoteBackend } from "../../src/ranker/backends/remote.js";
import { PromptBuilder } from "../../src/ranker/prompt.js";
import { logSoftmax, Verbalizer } from "../../src/ranker/verbalizer.js";
import { argmax, maxAbsDiff } from "../fixtures/arrays.js";
import { randomLlama, syntheticSpmVocab, tinyLlamaConfig } from "../fixtures/synthetic-llama.js";
import { TINY_LLAMA2_GGUF } from "../llm/shared-model.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const MODEL = TINY_LLAMA2_GGUF;
const TOL = 1e-3;
/** Building llama-server from scratch on two cores takes a while; CI builds it before the tests. */
const BUILD_TIMEOUT_MS = 60 * 60_000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls /health until the model is loaded (200), the process exits, or the deadline passes. */
async function waitReady(url: string, child: ChildProcess, log: () => string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`llama-server exited with ${child.exitCode}:\n${log()}`);
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`llama-server not ready after ${ms} ms:\n${log()}`);
}

interface Server {
  url: string;
  stop(): Promise<void>;
}

/**
 * llama-server on 127.0.0.1 (random free port) with `model`, F32 KV cache, no flash attention, one thread
 * (llama.cpp's threads busy-wait: one is faster on a shared machine).
 */
async function startServer(binary: string, model: string): Promise<Server> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let log = "";
  const child = spawn(
    binary,
    [
      ...["-m", model, "--host", "127.0.0.1", "--port", String(port)],
      ...["-c", "2048", "-np", "1", "-t", "1", "-tb", "1", "-b", "512", "-fa", "off"],
      ...["--cache-type-k", "f32", "--cache-type-v", "f32", "--no-webui"],
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-8000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  try {
    await waitReady(url, child, () => log);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, stop };
}

/** Ranking prompts (different histories and candidates) with the model's own tokenizer and letter ids. */
function rankingPrompts(modelPath: string): { prompts: PromptIds[]; vocabSize: number } {
  const g = GgufModel.open(modelPath);
  const tokenizer = tokenizerFromGguf(g.file);
  const vocabSize = g.config.vocabSize;
  g.close();
  const builder = new PromptBuilder(tokenizer);
  const verbalizer = Verbalizer.forPrompt(builder);
  const genres = ["Comedy", "Horror", "Drama", "Western", "Sci-Fi", "Musical"];
  const prompts = genres.map((genre, u) => ({
    ids: builder.build({
      history: Array.from({ length: 3 + 2 * u }, (_, i) => `${genre} movie ${i} (19${70 + 3 * i + u})`),
      candidates: Array.from(
        { length: 20 },
        (_, i) => `${genres[(u + i) % 6]} title ${u * 20 + i} (20${10 + i})`,
      ),
    }).ids,
    letterIds: verbalizer.ids,
  }));
  return { prompts, vocabSize };
}

async function inProcessScores(modelPath: string, prompts: PromptIds[]): Promise<Float32Array[]> {
  const cpp = await LlamaCppBackend.open({
    modelPath,
    threads: 1,
    sequences: 1,
    kvCacheF32: true,
    flashAttention: false,
    contextSize: 2048,
  });
  try {
    return await cpp.scorePrompts(prompts);
  } finally {
    await cpp.close();
  }
}

let binary = "";
const dir = mkdtempSync(join(tmpdir(), "llamarec-remote-server-"));
const RANDOM_GGUF = join(dir, "random-llama.gguf");

beforeAll(() => {
  binary = execFileSync("bash", [join(ROOT, "scripts", "build-llama-server.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    timeout: BUILD_TIMEOUT_MS,
  })
    .trim()
    .split("\n")
    .pop()!;
  const config = tinyLlamaConfig({ vocabSize: 1024 });
  const model = randomLlama(config, 11, 0.2);
  // Zero output rows for the byte tokens (ids 3..258) so the greedy next token is never a lone byte, which
  // llama-server cannot turn into valid UTF-8 text (it answers 500); the letters' logits are untouched.
  model.lmHead!.data.fill(0, 3 * config.hiddenSize, 259 * config.hiddenSize);
  writeLlamaGguf(RANDOM_GGUF, model, { tokenizer: syntheticSpmVocab(config.vocabSize) });
}, BUILD_TIMEOUT_MS + 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CASES = [
  { name: "the bundled tiny Llama 2 GGUF (32k vocabulary)", model: () => MODEL, answersDiffer: false },
  { name: "a random Llama written here (d 64, 2 layers)", model: () => RANDOM_GGUF, answersDiffer: true },
];

describe.each(CASES)("remote backend on a real llama-server vs in-process llama.cpp: $name", (c) => {
  let server: Server | undefined;
  let prompts: PromptIds[];
  let vocabSize: number;
  let local: Float32Array[];

  beforeAll(async () => {
    expect(existsSync(binary)).toBe(true);
    ({ prompts, vocabSize } = rankingPrompts(c.model()));
    local = await inProcessScores(c.model(), prompts);
    server = await startServer(binary, c.model());
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("in-process scores are finite and far from uniform; the random model's answers differ", () => {
    for (const s of local) {
      expect(s.every(Number.isFinite)).toBe(true);
      const l = logSoftmax(s);
      expect(Math.max(...l) - Math.min(...l)).toBeGreaterThan(0.1);
    }
    if (c.answersDiffer) expect(new Set(local.map((s) => argmax(s))).size).toBeGreaterThanOrEqual(3);
  });

  it("the same logit bias on every letter: all 20 letters back, letter log-probabilities agree (1e-3)", async () => {
    const remote = new RemoteBackend({ url: server!.url, letterBias: 100, missing: "-inf", concurrency: 2 });
    const scores = await remote.scorePrompts(prompts);
    await remote.close();
    expect(scores).toHaveLength(prompts.length);
    scores.forEach((s, k) => {
      expect(s.length).toBe(20);
      expect(s.every(Number.isFinite)).toBe(true); // every letter came back (no floor, no -inf)
      // Post-bias probabilities are already the letter distribution (the rest has ~e^-100 of the mass).
      expect(maxAbsDiff(s, logSoftmax(local[k]!))).toBeLessThan(TOL);
      expect(maxAbsDiff(logSoftmax(s), logSoftmax(local[k]!))).toBeLessThan(TOL);
      expect(argmax(s)).toBe(argmax(local[k]!));
    });
  });

  it("n_probs = the vocabulary size: full-vocabulary letter log-probabilities agree (1e-3)", async () => {
    const remote = new RemoteBackend({
      url: server!.url,
      topLogprobs: vocabSize,
      missing: "-inf",
      concurrency: 1,
    });
    const scores = await remote.scorePrompts(prompts);
    await remote.close();
    scores.forEach((s, k) => {
      expect(s.every(Number.isFinite)).toBe(true);
      expect(maxAbsDiff(s, local[k]!)).toBeLessThan(TOL);
      expect(maxAbsDiff(logSoftmax(s), logSoftmax(local[k]!))).toBeLessThan(TOL);
    });
  });

  it("top 20 without a bias: listed letters exact, missing ones share one floor below them", async () => {
    const remote = new RemoteBackend({ url: server!.url, topLogprobs: 20 });
    const scores = await remote.scorePrompts(prompts.slice(0, 2));
    await remote.close();
    scores.forEach((s, k) => {
      const l = local[k]!;
      const listed = [...s].map((v, i) => (Math.abs(v - l[i]!) < TOL ? i : -1)).filter((i) => i >= 0);
      const floor = Math.min(...s);
      for (let i = 0; i < 20; i++) if (!listed.includes(i)) expect(s[i]).toBe(floor);
      if (listed.length > 0 && listed.length < 20)
        expect(floor).toBeLessThan(Math.min(...listed.map((i) => s[i]!)));
    });
  });
});
