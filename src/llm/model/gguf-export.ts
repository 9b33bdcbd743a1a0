/**
 * Writes a LlamaForCausalLM as a GGUF model llama.cpp loads (F32 or F16 matrices; norms stay F32), with the
 * Q/K rows of "llama" files permuted the way convert_hf_to_gguf.py does. Tokenizer metadata
 * ("tokenizer.ggml.*") is the caller's: copy it from the base GGUF or build one (test/fixtures/synthetic-llama.ts).
 */

import { hfToGgufName, permuteRows } from "../config.js";
import { GgmlType, type GgufValue } from "../gguf/types.js";
import { type GgufTensorToWrite, gguf, writeGguf } from "../gguf/writer.js";
import type { LlamaForCausalLM } from "./llama.js";

export interface LlamaGgufExportOptions {
  /** Matrix storage type; 1-D tensors are always F32 (llama.cpp requires it). Default F32. */
  type?: GgmlType.F32 | GgmlType.F16;
  name?: string;
  /** tokenizer.ggml.* entries (and any other keys to carry over), written after the model keys. */
  tokenizer: ReadonlyMap<string, GgufValue>;
  /** Merge attached LoRA adapters into the written weights. Default false. */
  mergeLora?: boolean;
}

/** llama.cpp has no "mistral" architecture: convert_hf_to_gguf.py writes Mistral as "llama". */
function ggufArchitecture(model: LlamaForCausalLM): "llama" | "qwen2" {
  return model.config.architecture === "qwen2" ? "qwen2" : "llama";
}

export function llamaGgufMetadata(
  model: LlamaForCausalLM,
  options: LlamaGgufExportOptions,
): Map<string, GgufValue> {
  const c = model.config;
  const a = ggufArchitecture(model);
  const meta = new Map<string, GgufValue>([
    ["general.architecture", gguf.str(a)],
    ["general.name", gguf.str(options.name ?? "llamarec")],
    ["general.file_type", gguf.u32(options.type === GgmlType.F16 ? 1 : 0)],
    [`${a}.vocab_size`, gguf.u32(c.vocabSize)],
    [`${a}.context_length`, gguf.u32(c.maxPositionEmbeddings)],
    [`${a}.embedding_length`, gguf.u32(c.hiddenSize)],
    [`${a}.block_count`, gguf.u32(c.numLayers)],
    [`${a}.feed_forward_length`, gguf.u32(c.intermediateSize)],
    [`${a}.attention.head_count`, gguf.u32(c.numHeads)],
    [`${a}.attention.head_count_kv`, gguf.u32(c.numKvHeads)],
    [`${a}.attention.key_length`, gguf.u32(c.headDim)],
    [`${a}.attention.value_length`, gguf.u32(c.headDim)],
    [`${a}.attention.layer_norm_rms_epsilon`, gguf.f32(c.rmsNormEps)],
    [`${a}.rope.freq_base`, gguf.f32(c.ropeTheta)],
    [`${a}.rope.dimension_count`, gguf.u32(c.headDim)],
  ]);
  if (c.ropeScaling && c.ropeScaling.type !== "linear" && c.ropeScaling.type !== "llama3")
    throw new Error(`cannot export rope_scaling type ${c.ropeScaling.type} to GGUF`);
  if (c.ropeScaling?.type === "linear") {
    meta.set(`${a}.rope.scaling.type`, gguf.str("linear"));
    meta.set(`${a}.rope.scaling.factor`, gguf.f32(c.ropeScaling.factor));
  }
  for (const [k, v] of options.tokenizer) meta.set(k, v);
  return meta;
}

/** The GGUF tensors of a model (llama3 rope scaling becomes a rope_freqs tensor, as llama.cpp expects). */
export function llamaGgufTensors(
  model: LlamaForCausalLM,
  options: LlamaGgufExportOptions,
): GgufTensorToWrite[] {
  const c = model.config;
  const permute = ggufArchitecture(model) === "llama";
  const matrixType = options.type ?? GgmlType.F32;
  const merged = new Map<string, Float32Array>();
  if (options.mergeLora && model.loraAttachment) {
    for (const [path, adapter] of model.loraAttachment.adapters)
      merged.set(`${path}.weight`, adapter.mergedDelta());
  }
  const tensors: GgufTensorToWrite[] = [];
  if (c.ropeScaling?.type === "llama3") {
    // llama.cpp applies llama3 scaling only through per-frequency divisors: inv_plain / inv_scaled.
    const half = c.headDim / 2;
    const inv = model.rope.invFreq;
    const factors = new Float32Array(half);
    for (let i = 0; i < half; i++) factors[i] = c.ropeTheta ** (-(2 * i) / c.headDim) / inv[i]!;
    tensors.push({ name: "rope_freqs.weight", dims: [half], type: GgmlType.F32, data: factors });
  } else if (model.ropeFreqFactors) {
    tensors.push({
      name: "rope_freqs.weight",
      dims: [c.headDim / 2],
      type: GgmlType.F32,
      data: model.ropeFreqFactors,
    });
  }
  for (const [name, p] of model.namedParameters()) {
    const gname = hfToGgufName(name);
    if (!gname) throw new Error(`no GGUF name for parameter ${name}`);
    let data = p.data;
    const delta = merged.get(name);
    if (delta) data = data.map((w, i) => w + delta[i]!);
    if (permute && /\.attn_[qk]\.(weight|bias)$/.test(gname)) {
      const heads = gname.includes(".attn_q.") ? c.numHeads : c.numKvHeads;
      data = permuteRows(data, heads, p.rank === 2 ? p.shape[1]! : 1);
    }
    tensors.push({
      name: gname,
      dims: [...p.shape].reverse(),
      type: p.rank === 2 ? matrixType : GgmlType.F32,
      data,
    });
  }
  return tensors;
}

export function writeLlamaGguf(path: string, model: LlamaForCausalLM, options: LlamaGgufExportOptions): void {
  writeGguf(path, llamaGgufMetadata(model, options), llamaGgufTensors(model, options));
}
