/**
 * A LlamaForCausalLM from a GGUF file: hyper-parameters from the `<arch>.*` keys, weights dequantised to
 * float32 (any type the reader supports) and Q/K rows of "llama" files un-permuted to the HF layout.
 */

import { InputError } from "../../util/errors.js";
import { GgufFile } from "../gguf/reader.js";
import { ggufPermutesQK, ggufTensorName, permuteQKRows } from "./gguf-names.js";
import { LlamaForCausalLM } from "./llama.js";
import type { LlamaConfig, RopeScaling } from "./types.js";

function num(file: GgufFile, key: string, fallback?: number): number {
  const v = file.get(key);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new InputError(`${file.path}: missing GGUF key ${key}`);
  }
  if (typeof v !== "number") throw new InputError(`${file.path}: GGUF key ${key} is not a number`);
  return v;
}

/** The LlamaConfig a GGUF header describes. */
export function llamaConfigFromGguf(file: GgufFile): LlamaConfig {
  const arch = file.architecture;
  try {
    ggufPermutesQK(arch);
  } catch (err) {
    throw new InputError(`${file.path}: ${(err as Error).message}`);
  }
  const hiddenSize = num(file, `${arch}.embedding_length`);
  const numHeads = num(file, `${arch}.attention.head_count`);
  const headDim = num(file, `${arch}.attention.key_length`, hiddenSize / numHeads);
  const ropeDims = num(file, `${arch}.rope.dimension_count`, headDim);
  if (ropeDims !== headDim)
    throw new InputError(`${file.path}: partial rotary (${ropeDims} of ${headDim} dims) is not supported`);
  const embd = file.tensor("token_embd.weight");
  if (!embd) throw new InputError(`${file.path}: no tensor token_embd.weight`);
  const tokens = file.get("tokenizer.ggml.tokens");
  const vocabSize = num(file, `${arch}.vocab_size`, Array.isArray(tokens) ? tokens.length : embd.dims[1]);
  let ropeScaling: RopeScaling | null = null;
  const scalingType = file.get(`${arch}.rope.scaling.type`);
  if (scalingType === "linear")
    ropeScaling = { type: "linear", factor: num(file, `${arch}.rope.scaling.factor`) };
  else if (scalingType !== undefined && scalingType !== "none")
    throw new InputError(`${file.path}: rope scaling type "${String(scalingType)}" is not supported`);
  const freqs = file.tensor("rope_freqs.weight");
  return {
    architecture: arch,
    vocabSize,
    hiddenSize,
    intermediateSize: num(file, `${arch}.feed_forward_length`),
    numLayers: num(file, `${arch}.block_count`),
    numHeads,
    numKvHeads: num(file, `${arch}.attention.head_count_kv`, numHeads),
    headDim,
    rmsNormEps: num(file, `${arch}.attention.layer_norm_rms_epsilon`),
    ropeTheta: num(file, `${arch}.rope.freq_base`, 10000),
    ropeScaling,
    ropeFreqFactors: freqs ? file.readTensor("rope_freqs.weight") : null,
    tieWordEmbeddings: file.tensor("output.weight") === undefined,
    attentionBias: file.tensor("blk.0.attn_q.bias") !== undefined,
    maxPositionEmbeddings: num(file, `${arch}.context_length`, 4096),
  };
}

/** Loads a whole GGUF model into float32 parameters. */
export function loadLlamaFromGguf(path: string): LlamaForCausalLM {
  const file = GgufFile.open(path);
  try {
    const config = llamaConfigFromGguf(file);
    const model = new LlamaForCausalLM(config);
    const permute = ggufPermutesQK(config.architecture);
    for (const [name, p] of model.namedParameters()) {
      const gname = ggufTensorName(name);
      const info = gname ? file.tensor(gname) : undefined;
      if (!gname || !info) throw new InputError(`${path}: no GGUF tensor for ${name} (expected ${gname})`);
      if (info.elements !== p.size)
        throw new InputError(`${path}: tensor ${gname} has dims [${info.dims}], model expects [${p.shape}]`);
      let data = file.readTensor(gname);
      if (permute && /\.attn_[qk]\.(weight|bias)$/.test(gname)) {
        const heads = gname.includes(".attn_q.") ? config.numHeads : config.numKvHeads;
        data = permuteQKRows(data, heads, p.shape.length === 2 ? p.shape[1]! : 1, "gguf-to-hf");
      }
      p.data.set(data);
    }
    return model;
  } finally {
    file.close();
  }
}
