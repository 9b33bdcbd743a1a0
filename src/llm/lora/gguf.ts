/**
 * LoRA adapters as llama.cpp GGUF adapters (what convert_lora_to_gguf.py writes, read by llama-adapter.cpp):
 * general.type "adapter", adapter.type "lora", adapter.lora.alpha; per target "blk.N.attn_q.weight.lora_a"
 * with ggml dims [in, r] (= A [r, in]) and ".lora_b" with dims [r, out] (= B [out, r]). llama.cpp scales
 * by alpha / r with r = lora_b dims[0], so alpha is written as scaling·r (exact for rsLoRA too). For
 * "llama" files the rows of B on attn_q / attn_k get the same permutation as the base Q/K weights, since
 * P·(B·A) = (P·B)·A.
 */

import { Rng } from "../../tensor/rng.js";
import { InputError } from "../../util/errors.js";
import { GgufFile } from "../gguf/reader.js";
import { GgmlType, type GgufValue } from "../gguf/types.js";
import { type GgufTensorToWrite, gguf, writeGguf } from "../gguf/writer.js";
import { ggufPermutesQK, ggufWeightNameOfModule, permuteQKRows } from "../model/gguf-names.js";
import type { LlamaForCausalLM } from "../model/llama.js";
import { LORA_TARGETS, type LoraConfig } from "./config.js";

function qkHeads(model: LlamaForCausalLM, ggufName: string): number | null {
  if (!ggufPermutesQK(model.config.architecture)) return null;
  if (ggufName.includes(".attn_q.")) return model.config.numHeads;
  if (ggufName.includes(".attn_k.")) return model.config.numKvHeads;
  return null;
}

export function exportLoraGguf(model: LlamaForCausalLM, path: string, name = "llamarec-lora"): void {
  const lora = model.loraAttachment;
  if (!lora) throw new Error("exportLoraGguf: the model has no LoRA adapters attached");
  const tensors: GgufTensorToWrite[] = [];
  let scaling = Number.NaN;
  for (const [modulePath, a] of lora.adapters) {
    const g = ggufWeightNameOfModule(modulePath);
    if (!g) throw new Error(`no GGUF name for ${modulePath}`);
    scaling = a.scaling;
    const heads = qkHeads(model, g);
    const b = heads ? permuteQKRows(a.B.data, heads, a.r, "hf-to-gguf") : a.B.data;
    tensors.push({ name: `${g}.lora_a`, dims: [a.inFeatures, a.r], type: GgmlType.F32, data: a.A.data });
    tensors.push({ name: `${g}.lora_b`, dims: [a.r, a.outFeatures], type: GgmlType.F32, data: b });
  }
  const meta = new Map<string, GgufValue>([
    ["general.architecture", gguf.str(model.config.architecture)],
    ["general.type", gguf.str("adapter")],
    ["general.name", gguf.str(name)],
    ["adapter.type", gguf.str("lora")],
    ["adapter.lora.alpha", gguf.f32(scaling * lora.config.r)],
  ]);
  writeGguf(path, meta, tensors);
}

const NAME_RE =
  /^blk\.(\d+)\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight\.lora_([ab])$/;
const HF_OF: Record<string, string> = {
  attn_q: "self_attn.q_proj",
  attn_k: "self_attn.k_proj",
  attn_v: "self_attn.v_proj",
  attn_output: "self_attn.o_proj",
  ffn_gate: "mlp.gate_proj",
  ffn_up: "mlp.up_proj",
  ffn_down: "mlp.down_proj",
};

/** Attaches the adapters of a GGUF LoRA file to `model` (replacing any attached ones). */
export function importLoraGguf(model: LlamaForCausalLM, path: string): LoraConfig {
  const file = GgufFile.open(path);
  try {
    if (file.get("general.type") !== "adapter" || file.get("adapter.type") !== "lora")
      throw new InputError(`${path}: not a GGUF LoRA adapter (general.type/adapter.type)`);
    if (file.architecture !== model.config.architecture)
      throw new InputError(
        `${path}: adapter is for ${file.architecture}, model is ${model.config.architecture}`,
      );
    const alpha = file.get("adapter.lora.alpha");
    const byModule = new Map<string, { a?: string; b?: string }>();
    let r = 0;
    for (const t of file.tensors) {
      const m = NAME_RE.exec(t.name);
      if (!m) throw new InputError(`${path}: unsupported adapter tensor ${t.name}`);
      const modulePath = `model.layers.${m[1]}.${HF_OF[m[2]!]}`;
      const e = byModule.get(modulePath) ?? {};
      e[m[3] as "a" | "b"] = t.name;
      byModule.set(modulePath, e);
      if (m[3] === "b") r = t.dims[0]!;
    }
    if (byModule.size === 0) throw new InputError(`${path}: no LoRA tensors`);
    const targets = new Set([...byModule.keys()].map((p) => p.split(".").pop()!));
    // alpha 0 (absent) means scale 1 in llama.cpp.
    const effAlpha = typeof alpha === "number" && alpha !== 0 ? alpha : r;
    const config: LoraConfig = {
      r,
      alpha: effAlpha,
      dropout: 0,
      targetModules: LORA_TARGETS.filter((t) => targets.has(t)),
    };
    model.detachLora();
    const attached = model.attachLora(config, new Rng(0));
    for (const [modulePath, adapter] of attached.adapters) {
      const names = byModule.get(modulePath);
      if (!names) {
        adapter.A.data.fill(0);
        continue;
      }
      if (!names.a || !names.b) throw new InputError(`${path}: ${modulePath} needs both lora_a and lora_b`);
      const a = file.readTensor(names.a);
      const b = file.readTensor(names.b);
      if (a.length !== adapter.A.size || b.length !== adapter.B.size)
        throw new InputError(`${path}: ${names.a}/${names.b} do not fit ${modulePath} at rank ${r}`);
      const heads = qkHeads(model, `${ggufWeightNameOfModule(modulePath)}`);
      adapter.A.data.set(a);
      adapter.B.data.set(heads ? permuteQKRows(b, heads, r, "gguf-to-hf") : b);
    }
    return config;
  } finally {
    file.close();
  }
}
