/**
 * llama.cpp backend: agreement with the float64 reference forward (which proves the GGUF writer, the
 * loaders' Q/K un-permutation and the LoRA layout), prefix reuse, batching across sequences.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WeightSource } from "../../src/llm/config.js";
import { type LoraAdapter, readLoraGguf, writeLoraGguf } from "../../src/llm/gguf/lora.js";
import { GgufModel } from "../../src/llm/gguf/model.js";
import { HfModel } from "../../src/llm/hf/model.js";
import { tokenizerFromGguf } from "../../src/llm/tokenizer/gguf.js";
import type { Tokenizer } from "../../src/llm/tokenizer/types.js";
import { LlamaCppBackend } from "../../src/ranker/backends/llamacpp.js";
import { PromptBuilder } from "../../src/ranker/prompt.js";
import { logSoftmax, Verbalizer } from "../../src/ranker/verbalizer.js";
import { maxAbsDiff } from "../fixtures/arrays.js";
import { type TinyModelPaths, writeTinyLlama } from "../fixtures/tiny-llama.js";
import { referenceLogits } from "../llm/reference-forward.js";
import { TINY_LLAMA2_GGUF } from "../llm/shared-model.js";

/** A WeightSource with LoRA merged in: W + (alpha / r)·B·A. */
function withLora(base: WeightSource, lora: LoraAdapter): WeightSource {
  return {
    config: base.config,
    path: base.path,
    names: () => base.names(),
    has: (n) => base.has(n),
    shape: (n) => base.shape(n),
    dtype: (n) => base.dtype(n),
    ropeFreqFactors: () => base.ropeFreqFactors(),
    close: () => base.close(),
    get: (n) => {
      const w = base.get(n);
      const p = lora.pairs.get(n);
      if (!p) return w;
      const out = Float32Array.from(w);
      const s = lora.alpha / p.rank;
      for (let o = 0; o < p.outFeatures; o++) {
        for (let i = 0; i < p.inFeatures; i++) {
          let acc = 0;
          for (let r = 0; r < p.rank; r++) acc += p.b[o * p.rank + r]! * p.a[r * p.inFeatures + i]!;
          out[o * p.inFeatures + i]! += s * acc;
        }
      }
      return out;
    },
  };
}

describe("llama.cpp backend on a tiny random Llama written by us (no shared files)", () => {
  let dir: string;
  let paths: TinyModelPaths;
  let tok: Tokenizer;
  let verbalizer: Verbalizer;
  let builder: PromptBuilder;
  let backend: LlamaCppBackend;
  const example = {
    history: ["Toy Story (1995)", "Heat (1995)", "Star Wars (1977)", "Amélie (2001)"],
    candidates: Array.from({ length: 20 }, (_, i) => `Movie ${i} (19${70 + i})`),
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "llamarec-cpp-"));
    // std 0.2 keeps the random model far from uniform, so a layout bug shows up in the scores.
    paths = await writeTinyLlama(dir, { seed: 7, std: 0.2 });
    const g = GgufModel.open(paths.gguf);
    tok = tokenizerFromGguf(g.file);
    g.close();
    verbalizer = Verbalizer.create(tok);
    builder = new PromptBuilder(tok);
    backend = await LlamaCppBackend.open({
      modelPath: paths.gguf,
      threads: 2,
      sequences: 3,
      kvCacheF32: true,
    });
  });
  afterAll(async () => {
    await backend?.close();
  });

  it("letter scores equal the reference forward on the HF weights (GQA, 2 layers)", async () => {
    const prompt = builder.build(example);
    const [scores] = await backend.scorePrompts([{ ids: prompt.ids, letterIds: verbalizer.ids }]);
    const hf = HfModel.open(paths.hfDir);
    const expected = verbalizer.scoreLogits(referenceLogits(hf, prompt.ids));
    hf.close();
    const got = logSoftmax(scores!);
    expect(got.every(Number.isFinite)).toBe(true);
    expect(maxAbsDiff(got, expected)).toBeLessThan(1e-4);
    // Not a vacuous comparison: the letters are far from uniform.
    expect(Math.max(...got) - Math.min(...got)).toBeGreaterThan(0.1);
  });

  it("reuses prefixes and batches sequences without changing any score", async () => {
    const variants = [0, 1, 2, 3, 4, 5].map((k) =>
      builder.build({
        ...example,
        history: example.history.slice(k % 4),
        candidates: example.candidates.slice(k),
      }),
    );
    const prompts = variants.map((p, k) => ({ ids: p.ids, letterIds: verbalizer.ids.slice(0, 20 - k) }));
    const batched = await backend.scorePrompts(prompts);
    const again = await backend.scorePrompts([...prompts].reverse());
    // Every prompt against the float64 reference, which has no cache to get wrong.
    const hf = HfModel.open(paths.hfDir);
    for (const k of [0, 2, 5]) {
      expect(batched[k]!.length).toBe(20 - k);
      const logits = referenceLogits(hf, prompts[k]!.ids);
      const ref = logSoftmax(Float32Array.from(prompts[k]!.letterIds, (id) => logits[id]!));
      expect(maxAbsDiff(logSoftmax(batched[k]!), ref)).toBeLessThan(1e-4);
      expect(maxAbsDiff(logSoftmax(again[prompts.length - 1 - k]!), ref)).toBeLessThan(1e-4);
    }
    hf.close();
  });

  it("applies a GGUF LoRA adapter exactly as W + (alpha/r)·B·A (q, k, v, o, MLP)", async () => {
    const c = paths.config;
    const rank = 4;
    let seed = 1;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return (seed / 2 ** 31 - 0.5) * 0.6;
    };
    const pair = (out: number, inp: number) => ({
      a: Float32Array.from({ length: rank * inp }, rand),
      b: Float32Array.from({ length: out * rank }, rand),
      rank,
      inFeatures: inp,
      outFeatures: out,
    });
    const q = c.numHeads * c.headDim;
    const kv = c.numKvHeads * c.headDim;
    const adapter: LoraAdapter = {
      alpha: 8,
      pairs: new Map([
        ["model.layers.0.self_attn.q_proj.weight", pair(q, c.hiddenSize)],
        ["model.layers.1.self_attn.k_proj.weight", pair(kv, c.hiddenSize)],
        ["model.layers.0.self_attn.v_proj.weight", pair(kv, c.hiddenSize)],
        ["model.layers.1.self_attn.o_proj.weight", pair(c.hiddenSize, q)],
        ["model.layers.0.mlp.down_proj.weight", pair(c.hiddenSize, c.intermediateSize)],
      ]),
    };
    const loraPath = join(dir, "adapter.gguf");
    writeLoraGguf(loraPath, c, adapter);
    const back = readLoraGguf(loraPath, c);
    expect(back.alpha).toBe(8);
    for (const [n, p] of adapter.pairs) expect(Array.from(back.pairs.get(n)!.b)).toEqual(Array.from(p.b));

    const withAdapter = await LlamaCppBackend.open({
      modelPath: paths.gguf,
      loraPath,
      threads: 2,
      sequences: 1,
      kvCacheF32: true,
    });
    try {
      const prompt = builder.build(example);
      const [scores] = await withAdapter.scorePrompts([{ ids: prompt.ids, letterIds: verbalizer.ids }]);
      const hf = HfModel.open(paths.hfDir);
      const merged = verbalizer.scoreLogits(referenceLogits(withLora(hf, adapter), prompt.ids));
      const plain = verbalizer.scoreLogits(referenceLogits(hf, prompt.ids));
      hf.close();
      expect(maxAbsDiff(logSoftmax(scores!), merged)).toBeLessThan(1e-4);
      expect(maxAbsDiff(merged, plain)).toBeGreaterThan(1e-2); // the adapter does change the scores
    } finally {
      await withAdapter.close();
    }
  });

  it("rejects prompts longer than the context", async () => {
    const small = await LlamaCppBackend.open({
      modelPath: paths.gguf,
      threads: 2,
      sequences: 1,
      contextSize: 256,
    });
    try {
      await expect(small.scorePrompts([{ ids: new Array(300).fill(5), letterIds: [10] }])).rejects.toThrow(
        /exceeds the llama.cpp context size/,
      );
    } finally {
      await small.close();
    }
  });
});

describe("llama.cpp backend on llama-2-tiny-random.gguf (converted by llama.cpp tools)", () => {
  it("matches the reference forward on our GGUF loader (F16 weights, permuted Q/K)", async () => {
    const g = GgufModel.open(TINY_LLAMA2_GGUF);
    const tok = tokenizerFromGguf(g.file);
    const verbalizer = Verbalizer.create(tok);
    const prompt = new PromptBuilder(tok).build({
      history: ["Toy Story (1995)", "Jumanji (1995)"],
      candidates: ["Heat (1995)", "Casino (1995)", "Sabrina (1995)"],
    });
    const backend = await LlamaCppBackend.open({
      modelPath: TINY_LLAMA2_GGUF,
      threads: 2,
      sequences: 1,
      kvCacheF32: true,
    });
    try {
      const [scores] = await backend.scorePrompts([{ ids: prompt.ids, letterIds: verbalizer.ids }]);
      const expected = verbalizer.scoreLogits(referenceLogits(g, prompt.ids));
      expect(maxAbsDiff(logSoftmax(scores!), expected)).toBeLessThan(1e-4);
    } finally {
      await backend.close();
      g.close();
    }
  });
});

describe("llama.cpp agrees with the reference forward on architecture variants", () => {
  const variants = [
    {
      name: "qwen2 (q/k/v biases, NeoX RoPE, unpermuted Q/K, tied embeddings)",
      overrides: { architecture: "qwen2", tieWordEmbeddings: true, ropeTheta: 1e6 },
    },
    { name: "llama with attention_bias (permuted biases, o_proj bias)", overrides: { attentionBias: true } },
  ] as const;
  for (const v of variants) {
    it(v.name, async () => {
      const paths = await writeTinyLlama(mkdtempSync(join(tmpdir(), "llamarec-arch-")), {
        seed: 11,
        std: 0.2,
        overrides: v.overrides,
      });
      const g = GgufModel.open(paths.gguf);
      const h = HfModel.open(paths.hfDir);
      const tok = tokenizerFromGguf(g.file);
      const verbalizer = Verbalizer.create(tok);
      const prompt = new PromptBuilder(tok).build({
        history: ["Toy Story (1995)", "Heat (1995)"],
        candidates: ["a", "b", "c", "d"],
      });
      const backend = await LlamaCppBackend.open({
        modelPath: paths.gguf,
        threads: 2,
        sequences: 1,
        kvCacheF32: true,
      });
      try {
        expect(g.config).toEqual(h.config);
        const [scores] = await backend.scorePrompts([
          { ids: prompt.ids, letterIds: verbalizer.ids.slice(0, 4) },
        ]);
        const logits = referenceLogits(h, prompt.ids);
        const expected = logSoftmax(verbalizer.ids.slice(0, 4).map((id) => logits[id]!));
        expect(maxAbsDiff(logSoftmax(scores!), expected)).toBeLessThan(1e-4);
        // Our GGUF loader (biases un-permuted for llama, left alone for qwen2) gives the same function.
        expect(maxAbsDiff(referenceLogits(g, prompt.ids), logits)).toBeLessThan(1e-9);
      } finally {
        await backend.close();
        g.close();
        h.close();
      }
    });
  }
});
