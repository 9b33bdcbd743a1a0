/**
 * Small random models of any supported shape (qwen2 biases, tied heads, rope scaling — which
 * src/llm/tiny.ts does not write) for tests and benchmarks, and a minimal SentencePiece-style vocabulary
 * llama.cpp accepts for any vocabulary size (control tokens, the 256 byte tokens, letters, filler pieces).
 */

import { Rng } from "../../tensor/rng.js";
import type { LlamaConfig } from "../config.js";
import { type GgufValue, GgufValueType } from "../gguf/types.js";
import { gguf } from "../gguf/writer.js";
import { LlamaForCausalLM } from "./llama.js";

export function tinyLlamaConfig(overrides: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    architecture: "llama",
    vocabSize: 512,
    hiddenSize: 64,
    intermediateSize: 128,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    tieWordEmbeddings: false,
    attentionBias: false,
    outputBias: false,
    maxPositionEmbeddings: 2048,
    bosTokenId: 1,
    eosTokenId: 2,
    ...overrides,
  };
}

/**
 * A model with N(0, std²) matrices, norm weights 1 + N(0, 0.1²) and zero-mean biases. std 0.1 keeps
 * logits spread out enough that agreement tests are not comparing near-uniform distributions.
 */
export function randomLlama(config: LlamaConfig, seed: number, std = 0.1): LlamaForCausalLM {
  const model = new LlamaForCausalLM(config);
  const rng = new Rng(seed);
  for (const [name, p] of model.namedParameters()) {
    const isNorm = name.endsWith("norm.weight");
    for (let i = 0; i < p.size; i++) p.data[i] = isNorm ? 1 + 0.1 * rng.normal() : std * rng.normal();
  }
  return model;
}

/**
 * tokenizer.ggml.* metadata for a SentencePiece ("llama") vocabulary of `vocabSize` tokens: <unk> <s> </s>,
 * <0x00>…<0xFF>, "▁", "A"…"Z", "▁A"…"▁Z", then filler pieces "▁w<i>".
 */
export function syntheticSpmVocab(vocabSize: number): Map<string, GgufValue> {
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const types: number[] = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(6);
  }
  const letters = Array.from({ length: 26 }, (_, i) => String.fromCharCode(65 + i));
  for (const t of ["▁", ...letters, ...letters.map((l) => `▁${l}`)]) {
    tokens.push(t);
    types.push(1);
  }
  if (vocabSize < tokens.length) throw new RangeError(`vocabSize must be at least ${tokens.length}`);
  for (let i = tokens.length; i < vocabSize; i++) {
    tokens.push(`▁w${i}`);
    types.push(1);
  }
  const scores = tokens.map((_, i) => (i < 259 ? 0 : -i));
  return new Map<string, GgufValue>([
    ["tokenizer.ggml.model", gguf.str("llama")],
    ["tokenizer.ggml.tokens", gguf.arr(GgufValueType.STRING, tokens)],
    ["tokenizer.ggml.scores", gguf.arr(GgufValueType.FLOAT32, scores)],
    ["tokenizer.ggml.token_type", gguf.arr(GgufValueType.INT32, types)],
    ["tokenizer.ggml.unknown_token_id", gguf.u32(0)],
    ["tokenizer.ggml.bos_token_id", gguf.u32(1)],
    ["tokenizer.ggml.eos_token_id", gguf.u32(2)],
    ["tokenizer.ggml.add_bos_token", gguf.bool(true)],
  ]);
}
