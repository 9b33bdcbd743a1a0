/**
 * The model's LoRA adapters as a llama.cpp GGUF adapter and back, through src/llm/gguf/lora.ts (format,
 * tensor names, Q/K permutation of B). llama.cpp scales by adapter.lora.alpha / r, so alpha is written as
 * scaling·r: PEFT's alpha for plain LoRA, and still exact for rsLoRA (alpha/√r).
 */

import { Rng } from "../../tensor/rng.js";
import { InputError } from "../../util/errors.js";
import {
  type LoraAdapter as GgufLoraAdapter,
  type LoraPair,
  readLoraGguf,
  writeLoraGguf,
} from "../gguf/lora.js";
import type { LlamaForCausalLM } from "../model/llama.js";
import { LORA_TARGETS, type LoraConfig } from "./config.js";

export function exportLoraGguf(model: LlamaForCausalLM, path: string, name = "llamarec-lora"): void {
  const lora = model.loraAttachment;
  if (!lora) throw new Error("exportLoraGguf: the model has no LoRA adapters attached");
  const pairs = new Map<string, LoraPair>();
  let scaling = 1;
  for (const [modulePath, a] of lora.adapters) {
    scaling = a.scaling;
    pairs.set(`${modulePath}.weight`, {
      a: a.A.data,
      b: a.B.data,
      rank: a.r,
      inFeatures: a.inFeatures,
      outFeatures: a.outFeatures,
    });
  }
  const adapter: GgufLoraAdapter = { alpha: scaling * lora.config.r, pairs };
  writeLoraGguf(path, model.config, adapter, { name });
}

/** Attaches the adapters of a GGUF LoRA file to `model` (replacing any attached ones). */
export function importLoraGguf(model: LlamaForCausalLM, path: string): LoraConfig {
  const adapter = readLoraGguf(path, model.config);
  if (adapter.pairs.size === 0) throw new InputError(`${path}: no LoRA tensors`);
  const ranks = new Set([...adapter.pairs.values()].map((p) => p.rank));
  if (ranks.size !== 1)
    throw new InputError(`${path}: adapters of different ranks (${[...ranks]}) are not supported`);
  const r = [...ranks][0]!;
  const targets = new Set<string>();
  for (const hfName of adapter.pairs.keys()) {
    const m = /^model\.layers\.\d+\.(?:self_attn|mlp)\.(\w+)\.weight$/.exec(hfName);
    if (!m || !(LORA_TARGETS as readonly string[]).includes(m[1]!))
      throw new InputError(`${path}: unsupported LoRA target ${hfName}`);
    targets.add(m[1]!);
  }
  const config: LoraConfig = {
    r,
    alpha: adapter.alpha,
    dropout: 0,
    targetModules: LORA_TARGETS.filter((t) => targets.has(t)),
  };
  model.detachLora();
  const attached = model.attachLora(config, new Rng(0));
  for (const [modulePath, a] of attached.adapters) {
    const pair = adapter.pairs.get(`${modulePath}.weight`);
    if (!pair) {
      a.A.data.fill(0); // a layer the file does not adapt: B stays 0, no effect
      continue;
    }
    if (pair.a.length !== a.A.size || pair.b.length !== a.B.size)
      throw new InputError(`${path}: the adapter for ${modulePath} does not fit this model`);
    a.A.data.set(pair.a);
    a.B.data.set(pair.b);
  }
  return config;
}
