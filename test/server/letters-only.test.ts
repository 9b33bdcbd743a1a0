/**
 * The server's llama.cpp scoring reads only the letters' probabilities (LlamaCppBackendOptions.lettersOnly:
 * every other token biased to -inf, a short top-k). Checked against the engine's full-vocabulary scores on a
 * model whose answer differs per prompt (test/ranker/marker-model.ts), with the end-of-sequence token (which
 * node-llama-cpp cannot bias) given the HIGHEST logit of all: a top-k of the letters alone would then drop a
 * letter. After the verbalizer's log-softmax the letters-only scores equal the engine's within 1e-3, every
 * letter finite, for 20 letters and for a shorter letter list.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeLlamaGguf } from "../../src/llm/model/gguf-export.js";
import type { PromptIds } from "../../src/ranker/backend.js";
import { EngineBackend } from "../../src/ranker/backends/engine.js";
import { LlamaCppBackend } from "../../src/ranker/backends/llamacpp.js";
import { logSoftmax } from "../../src/ranker/verbalizer.js";
import { argmax, maxAbsDiff } from "../fixtures/arrays.js";
import { syntheticSpmVocab } from "../fixtures/synthetic-llama.js";
import { LETTERS, type MarkerPrompt, markerModel, markerPrompts } from "../ranker/marker-model.js";

const VOCAB = 32000;
const EOS = 2;
const dir = mkdtempSync(join(tmpdir(), "llamarec-letters-only-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("llama.cpp letters-only scores", () => {
  let modelPath: string;
  let prompts: MarkerPrompt[];
  let engine: Float32Array[];

  beforeAll(async () => {
    const model = markerModel(VOCAB);
    // EOS reads every marker dimension: its logit is the sum of the letters' (all >= 0), above each of them.
    const head = new Map(model.namedParameters()).get("lm_head.weight")!;
    const h = model.config.hiddenSize;
    for (let k = 0; k < LETTERS; k++) head.data[EOS * h + k] = 2;
    modelPath = join(dir, "marker-eos.gguf");
    writeLlamaGguf(modelPath, model, { tokenizer: syntheticSpmVocab(VOCAB) });
    prompts = markerPrompts(24, 5, VOCAB);
    const eng = new EngineBackend(model);
    engine = await eng.scorePrompts(prompts);
    // The trap is set: EOS beats every letter in the full distribution.
    const [withEos] = await eng.scorePrompts([
      { ids: prompts[0]!.ids, letterIds: [EOS, ...prompts[0]!.letterIds] },
    ]);
    expect(withEos![0]!).toBeGreaterThan(Math.max(...withEos!.slice(1)));
  }, 120_000);

  it("equal the engine's letter log-softmax (20 letters), every letter finite, answers as built", async () => {
    const backend = await LlamaCppBackend.open({
      modelPath,
      threads: 1,
      sequences: 2,
      kvCacheF32: true,
      lettersOnly: true,
    });
    try {
      // The resolved sampling configuration is reused per bias object (an own property shadows the method).
      const seqs = (backend as unknown as { sequences: object[] }).sequences;
      for (const seq of seqs) expect(Object.hasOwn(seq, "_resolveSamplerConfig")).toBe(true);
      const got = await backend.scorePrompts(prompts);
      got.forEach((g, i) => {
        expect(g.every(Number.isFinite)).toBe(true);
        expect(maxAbsDiff(logSoftmax(g), logSoftmax(engine[i]!))).toBeLessThan(1e-3);
        expect(argmax(g)).toBe(prompts[i]!.answer);
      });
    } finally {
      await backend.close();
    }
  }, 120_000);

  it("a shorter letter list is normalised over those letters only", async () => {
    const backend = await LlamaCppBackend.open({
      modelPath,
      threads: 1,
      sequences: 1,
      kvCacheF32: true,
      lettersOnly: true,
    });
    try {
      const short: PromptIds[] = prompts
        .slice(0, 6)
        .map((p) => ({ ids: p.ids, letterIds: p.letterIds.slice(0, 7) }));
      const got = await backend.scorePrompts(short);
      got.forEach((g, i) => {
        expect(g.length).toBe(7);
        expect(g.every(Number.isFinite)).toBe(true);
        expect(maxAbsDiff(logSoftmax(g), logSoftmax(engine[i]!.slice(0, 7)))).toBeLessThan(1e-3);
      });
    } finally {
      await backend.close();
    }
  }, 120_000);
});
