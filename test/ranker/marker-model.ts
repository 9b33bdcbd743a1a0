/**
 * A constructed one-layer Llama whose answer letter is decided by the prompt: 20 "marker" tokens, one per
 * letter; the model's letter scores are (up to a shared scale) how often each marker occurs in the prompt.
 * Random models score every prompt nearly alike, so a backend that hands one prompt's scores to another
 * passes tests on them; with this model every prompt has its own, known, answer.
 *
 * How: q = k = 0 makes attention uniform over the positions so far; v copies the marker dimensions 0..19
 * of the (normalised) embeddings; o writes their mean back to dimensions 0..19; the MLP is zero; the head
 * maps dimension k to letter k. Other tokens live on dimensions 32..63, which v and the head ignore.
 */
import type { LlamaConfig } from "../../src/llm/config.js";
import type { LlamaForCausalLM } from "../../src/llm/model/llama.js";
import type { PromptIds } from "../../src/ranker/backend.js";
import { Rng } from "../../src/tensor/rng.js";
import { randomLlama, tinyLlamaConfig } from "../fixtures/synthetic-llama.js";

export const LETTERS = 20;
/** Letter k is token LETTER0 + k ("A".."T" in syntheticSpmVocab). */
export const LETTER0 = 259 + 1;
/** Marker of letter k is token MARKER0 + k. */
export const MARKER0 = 400;
const FILLER0 = 500;

export function markerModelConfig(vocabSize: number): LlamaConfig {
  return tinyLlamaConfig({ vocabSize, numLayers: 1 });
}

export function markerModel(vocabSize: number, seed = 1): LlamaForCausalLM {
  const config = markerModelConfig(vocabSize);
  const model = randomLlama(config, seed);
  const rng = new Rng(seed + 1);
  const h = config.hiddenSize;
  const params = new Map(model.namedParameters());
  const set = (name: string, fill: (data: Float32Array) => void) => {
    const p = params.get(name);
    if (!p) throw new Error(`no parameter ${name}`);
    p.data.fill(0);
    fill(p.data);
  };
  set("model.embed_tokens.weight", (e) => {
    for (let t = 0; t < vocabSize; t++) {
      const k = t - MARKER0;
      if (k >= 0 && k < LETTERS) e[t * h + k] = 1;
      else for (let d = 32; d < h; d++) e[t * h + d] = rng.normal();
    }
  });
  for (const n of ["model.layers.0.input_layernorm.weight", "model.norm.weight"]) set(n, (w) => w.fill(1));
  set("model.layers.0.post_attention_layernorm.weight", (w) => w.fill(1));
  set("model.layers.0.self_attn.q_proj.weight", () => {});
  set("model.layers.0.self_attn.k_proj.weight", () => {});
  // v: kv head 0 carries marker dims 0..15, kv head 1 carries 16..19 (q heads 0 and 2 read them).
  set("model.layers.0.self_attn.v_proj.weight", (v) => {
    for (let k = 0; k < LETTERS; k++) v[k * h + k] = 1;
  });
  const headDim = config.headDim;
  const qHeadsPerKv = config.numHeads / config.numKvHeads;
  set("model.layers.0.self_attn.o_proj.weight", (o) => {
    const inWidth = config.numHeads * headDim;
    for (let k = 0; k < LETTERS; k++) {
      const kvHead = Math.floor(k / headDim);
      const col = kvHead * qHeadsPerKv * headDim + (k % headDim);
      o[k * inWidth + col] = 40;
    }
  });
  for (const n of ["gate_proj", "up_proj", "down_proj"]) set(`model.layers.0.mlp.${n}.weight`, () => {});
  set("lm_head.weight", (w) => {
    for (let k = 0; k < LETTERS; k++) w[(LETTER0 + k) * h + k] = 2;
  });
  return model;
}

export interface MarkerPrompt extends PromptIds {
  /** The letter this prompt's markers point at. */
  answer: number;
}

/**
 * `n` prompts shaped like ranking prompts: BOS, a shared instruction prefix (reused from the KV cache), a
 * per-prompt body of varying length (so batches mix sequences of different lengths, which makes llama.cpp
 * reorder its outputs) holding the markers, and a shared response suffix.
 */
export function markerPrompts(n: number, seed = 3, vocabSize = 32000): MarkerPrompt[] {
  const rng = new Rng(seed);
  const filler = () => FILLER0 + Math.floor(rng.uniform() * (vocabSize - FILLER0));
  const prefix = Array.from({ length: 120 }, filler);
  const suffix = Array.from({ length: 6 }, filler);
  const letterIds = Array.from({ length: LETTERS }, (_, k) => LETTER0 + k);
  return Array.from({ length: n }, (_, i) => {
    const answer = (i * 7 + Math.floor(rng.uniform() * 3)) % LETTERS;
    const body = Array.from({ length: 15 + Math.floor(rng.uniform() * 110) }, filler);
    const put = (token: number) => body.splice(Math.floor(rng.uniform() * (body.length + 1)), 0, token);
    for (let r = 0; r < 4; r++) put(MARKER0 + answer);
    // A few other markers, so the other 19 scores differ from prompt to prompt too.
    for (let r = 0; r < 3; r++) put(MARKER0 + Math.floor(rng.uniform() * LETTERS));
    return { ids: [1, ...prefix, ...body, ...suffix], letterIds, answer };
  });
}
