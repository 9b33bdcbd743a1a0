/**
 * Our TypeScript engine against llama.cpp (node-llama-cpp, F32 KV cache, no flash attention, 2 threads) on
 * the same F32 GGUF files: the 20 letter log-probabilities agree within 1e-3, without and with a LoRA
 * adapter (given to llama.cpp as a GGUF LoRA), for llama (GQA, Q/K permuted in the file), qwen2 (q/k/v
 * biases, tied head, NeoX rope) and llama with Llama 3 rope scaling (rope_freqs tensor) and biases. A PEFT export re-imported
 * by the engine backend scores identically to the in-memory adapter.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaConfig } from "../../src/llm/config.js";
import { GgufModel } from "../../src/llm/gguf/model.js";
import { LLAMAREC_LORA, type LoraConfig } from "../../src/llm/lora/config.js";
import { exportLoraGguf } from "../../src/llm/lora/gguf.js";
import { exportPeft } from "../../src/llm/lora/peft.js";
import { writeLlamaGguf } from "../../src/llm/model/gguf-export.js";
import type { LlamaForCausalLM } from "../../src/llm/model/llama.js";
import { loadLlama } from "../../src/llm/model/load.js";
import { tokenizerFromGguf } from "../../src/llm/tokenizer/gguf.js";
import type { PromptIds } from "../../src/ranker/backend.js";
import { EngineBackend } from "../../src/ranker/backends/engine.js";
import { LlamaCppBackend } from "../../src/ranker/backends/llamacpp.js";
import { PromptBuilder } from "../../src/ranker/prompt.js";
import { logSoftmax, Verbalizer } from "../../src/ranker/verbalizer.js";
import { Rng } from "../../src/tensor/rng.js";
import { maxAbsDiff } from "../fixtures/arrays.js";
import { randomLlama, syntheticSpmVocab, tinyLlamaConfig } from "../fixtures/synthetic-llama.js";
import { writeTinyLlama } from "../fixtures/tiny-llama.js";
import { TINY_LLAMA2_GGUF } from "../llm/shared-model.js";

const TOL = 1e-3;
const dir = mkdtempSync(join(tmpdir(), "llamarec-agree-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Gives every adapter a random non-zero B (a fresh adapter is an exact no-op). */
function attachRandomLora(model: LlamaForCausalLM, config: LoraConfig, seed: number): void {
  const lora = model.attachLora(config, new Rng(seed));
  const rng = new Rng(seed + 1);
  for (const a of lora.adapters.values()) for (let i = 0; i < a.B.size; i++) a.B.data[i] = 0.1 * rng.normal();
}

async function llamaCppScores(modelPath: string, prompts: PromptIds[], loraPath?: string) {
  const backend = await LlamaCppBackend.open({
    modelPath,
    threads: 2,
    sequences: 1,
    kvCacheF32: true,
    flashAttention: false,
    ...(loraPath ? { loraPath } : {}),
  });
  try {
    return await backend.scorePrompts(prompts);
  } finally {
    await backend.close();
  }
}

/** Worst difference of the letter log-probabilities, and the spread of the letter distribution. */
function compare(ours: Float32Array[], theirs: Float32Array[]): { diff: number; spread: number } {
  let diff = 0;
  let spread = 0;
  ours.forEach((o, i) => {
    const t = theirs[i]!;
    expect(o.every(Number.isFinite) && t.every(Number.isFinite)).toBe(true);
    // Full-vocabulary log-probs and the verbalizer's letter-normalised scores must both agree.
    diff = Math.max(diff, maxAbsDiff(o, t), maxAbsDiff(logSoftmax(o), logSoftmax(t)));
    const l = logSoftmax(o);
    spread = Math.max(spread, Math.max(...l) - Math.min(...l));
  });
  return { diff, spread };
}

describe("engine vs llama.cpp on ranking prompts (tiny Llama with the built-in SentencePiece vocab)", () => {
  let modelPath: string;
  let prompts: PromptIds[];
  let engine: EngineBackend;

  beforeAll(async () => {
    const paths = await writeTinyLlama(join(dir, "tiny"), { seed: 3, std: 0.2 });
    modelPath = paths.gguf;
    const g = GgufModel.open(modelPath);
    const tok = tokenizerFromGguf(g.file);
    g.close();
    const verbalizer = Verbalizer.create(tok);
    const builder = new PromptBuilder(tok);
    prompts = [0, 1, 2].map((u) => ({
      ids: builder.build({
        history: Array.from({ length: 4 + 3 * u }, (_, i) => `Watched movie ${u}-${i} (19${80 + i})`),
        candidates: Array.from({ length: 20 }, (_, i) => `Candidate ${i} of user ${u} (20${10 + i})`),
      }).ids,
      letterIds: verbalizer.ids,
    }));
    engine = await EngineBackend.open({ modelPath });
  });

  it("agrees without an adapter", async () => {
    expect(prompts[2]!.ids.length).toBeGreaterThan(300);
    const { diff, spread } = compare(
      await engine.scorePrompts(prompts),
      await llamaCppScores(modelPath, prompts),
    );
    expect(diff).toBeLessThan(TOL);
    expect(spread).toBeGreaterThan(0.05); // not comparing two near-uniform distributions
  });

  it("agrees with a LoRA adapter (r 8, alpha 32, q/v), given to llama.cpp as GGUF LoRA", async () => {
    const before = await engine.scorePrompts(prompts);
    attachRandomLora(engine.model, LLAMAREC_LORA, 5);
    const loraPath = join(dir, "tiny-lora.gguf");
    exportLoraGguf(engine.model, loraPath);
    const ours = await engine.scorePrompts(prompts);
    expect(maxAbsDiff(ours[0]!, before[0]!)).toBeGreaterThan(1e-2); // the adapter matters
    const { diff } = compare(ours, await llamaCppScores(modelPath, prompts, loraPath));
    expect(diff).toBeLessThan(TOL);

    // PEFT export → engine backend opened from disk: identical scores.
    const peftDir = join(dir, "peft");
    await exportPeft(engine.model, peftDir);
    const reopened = await EngineBackend.open({ modelPath, loraPath: peftDir });
    const again = await reopened.scorePrompts(prompts);
    expect(Math.max(...again.map((s, i) => maxAbsDiff(s, ours[i]!)))).toBe(0);
    await reopened.close();
    engine.model.detachLora();
  });
});

describe("engine vs llama.cpp across architectures (synthetic vocabulary, 200-token prompts)", () => {
  const variants: Array<[string, LlamaConfig, LoraConfig]> = [
    [
      "qwen2: q/k/v biases, tied head, NeoX rope",
      tinyLlamaConfig({
        architecture: "qwen2",
        attentionBias: true,
        tieWordEmbeddings: true,
        ropeTheta: 1e6,
      }),
      { ...LLAMAREC_LORA, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"] },
    ],
    [
      "llama: Llama 3 rope scaling (rope_freqs), MHA, q/k/v/o biases (permuted q/k biases)",
      tinyLlamaConfig({
        numKvHeads: 4,
        attentionBias: true,
        outputBias: true,
        ropeTheta: 500000,
        ropeScaling: {
          type: "llama3",
          factor: 8,
          lowFreqFactor: 1,
          highFreqFactor: 4,
          originalMaxPositionEmbeddings: 64,
        },
      }),
      { ...LLAMAREC_LORA, targetModules: ["k_proj", "gate_proj", "up_proj", "down_proj"] },
    ],
  ];
  const ids = [1, ...Array.from({ length: 199 }, (_, i) => 300 + ((i * 37) % 200))];
  const prompts: PromptIds[] = [{ ids, letterIds: Array.from({ length: 20 }, (_, i) => 286 + i) }];

  for (const [name, config, loraConfig] of variants) {
    it(name, async () => {
      const modelPath = join(dir, `${config.architecture}-${config.ropeScaling?.type ?? "plain"}.gguf`);
      writeLlamaGguf(modelPath, randomLlama(config, 11), { tokenizer: syntheticSpmVocab(config.vocabSize) });
      const model = loadLlama(modelPath);
      const engine = new EngineBackend(model);
      const plain = compare(await engine.scorePrompts(prompts), await llamaCppScores(modelPath, prompts));
      expect(plain.diff).toBeLessThan(TOL);
      expect(plain.spread).toBeGreaterThan(0.05);
      attachRandomLora(model, loraConfig, 13);
      const loraPath = join(dir, `${config.architecture}-lora.gguf`);
      exportLoraGguf(model, loraPath);
      const adapted = compare(
        await engine.scorePrompts(prompts),
        await llamaCppScores(modelPath, prompts, loraPath),
      );
      expect(adapted.diff).toBeLessThan(TOL);
    });
  }
});

describe("engine vs llama.cpp on the bundled models/llama-2-tiny-random.gguf", () => {
  it("agrees on a ranking prompt (F16 weights, real Llama 2 vocabulary)", async () => {
    const g = GgufModel.open(TINY_LLAMA2_GGUF);
    const tok = tokenizerFromGguf(g.file);
    g.close();
    const verbalizer = Verbalizer.create(tok);
    const prompt = new PromptBuilder(tok).build({
      history: ["Toy Story (1995)", "Jumanji (1995)", "Heat (1995)"],
      candidates: Array.from({ length: 20 }, (_, i) => `Some Movie ${i} (19${70 + i})`),
    });
    const prompts = [{ ids: prompt.ids, letterIds: verbalizer.ids }];
    const engine = await EngineBackend.open({ modelPath: TINY_LLAMA2_GGUF });
    const { diff } = compare(
      await engine.scorePrompts(prompts),
      await llamaCppScores(TINY_LLAMA2_GGUF, prompts),
    );
    expect(diff).toBeLessThan(TOL);
  });
});
