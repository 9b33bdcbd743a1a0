/**
 * GGUF LoRA adapters as llama.cpp loads them (llama-adapter.cpp, convert_lora_to_gguf.py):
 * general.type = "adapter", adapter.type = "lora", adapter.lora.alpha (f32), general.architecture = the
 * base model's; per adapted weight `<gguf name>.lora_a` with dims [in, r] (PEFT lora_A.weight [r, in]) and
 * `<gguf name>.lora_b` with dims [r, out] (PEFT lora_B.weight [out, r]).
 * llama.cpp applies W·x + scale·(alpha / r)·B·A·x (alpha = 0 means a factor of 1), the same as PEFT's
 * lora_alpha / r. For architecture "llama" the output rows of q/k are permuted like the base weights,
 * which for a LoRA pair means permuting the rows of B only.
 */
import { InputError } from "../../util/errors.js";
import { ggufToHfName, hfToGgufName, type LlamaConfig, permuteRows, unpermuteRows } from "../config.js";
import { GgufFile } from "./reader.js";
import { GgmlType, type GgufValue } from "./types.js";
import { type GgufTensorToWrite, gguf, writeGguf } from "./writer.js";

export interface LoraPair {
  /** PEFT lora_A.weight, [r, in], row-major. */
  a: Float32Array;
  /** PEFT lora_B.weight, [out, r], row-major. */
  b: Float32Array;
  rank: number;
  inFeatures: number;
  outFeatures: number;
}

export interface LoraAdapter {
  /** PEFT lora_alpha; the update is scaled by alpha / rank. */
  alpha: number;
  /** Keyed by the HF name of the adapted weight, e.g. model.layers.0.self_attn.q_proj.weight. */
  pairs: Map<string, LoraPair>;
}

function qkHeads(hfName: string, config: LlamaConfig): number | null {
  if (config.architecture !== "llama") return null;
  const m = /\.self_attn\.([qk])_proj\.weight$/.exec(hfName);
  if (!m) return null;
  return m[1] === "q" ? config.numHeads : config.numKvHeads;
}

export function writeLoraGguf(
  path: string,
  config: LlamaConfig,
  adapter: LoraAdapter,
  options: { type?: GgmlType; name?: string } = {},
): void {
  const arch = config.architecture === "mistral" ? "llama" : config.architecture;
  const meta = new Map<string, GgufValue>([
    ["general.architecture", gguf.str(arch)],
    ["general.type", gguf.str("adapter")],
    ["general.name", gguf.str(options.name ?? "llamarec-lora")],
    ["adapter.type", gguf.str("lora")],
    ["adapter.lora.alpha", gguf.f32(adapter.alpha)],
  ]);
  const type = options.type ?? GgmlType.F32;
  const tensors: GgufTensorToWrite[] = [];
  for (const [hfName, p] of adapter.pairs) {
    const base = hfToGgufName(hfName);
    if (!base) throw new InputError(`LoRA target ${hfName} has no GGUF counterpart`);
    if (p.a.length !== p.rank * p.inFeatures || p.b.length !== p.outFeatures * p.rank) {
      throw new InputError(
        `LoRA pair ${hfName}: A must be [${p.rank}, ${p.inFeatures}] and B [${p.outFeatures}, ${p.rank}]`,
      );
    }
    const heads = qkHeads(hfName, config);
    const b = heads ? permuteRows(p.b, heads, p.rank) : p.b;
    tensors.push({ name: `${base}.lora_a`, dims: [p.inFeatures, p.rank], type, data: p.a });
    tensors.push({ name: `${base}.lora_b`, dims: [p.rank, p.outFeatures], type, data: b });
  }
  writeGguf(path, meta, tensors);
}

/** Reads a GGUF LoRA adapter back into HF names and PEFT layout (B rows un-permuted for llama q/k). */
export function readLoraGguf(path: string, config: LlamaConfig): LoraAdapter {
  const file = GgufFile.open(path);
  try {
    if (file.get("general.type") !== "adapter" || file.get("adapter.type") !== "lora") {
      throw new InputError(`${path}: not a GGUF LoRA adapter (general.type/adapter.type)`);
    }
    const alphaValue = file.get("adapter.lora.alpha");
    const alpha = typeof alphaValue === "number" ? alphaValue : 0;
    const pairs = new Map<string, LoraPair>();
    for (const t of file.tensors) {
      if (!t.name.endsWith(".lora_a")) continue;
      const base = t.name.slice(0, -".lora_a".length);
      const bInfo = file.tensor(`${base}.lora_b`);
      if (!bInfo) throw new InputError(`${path}: ${t.name} has no matching .lora_b`);
      const hfName = ggufToHfName(base);
      if (!hfName) throw new InputError(`${path}: unknown LoRA target ${base}`);
      const [inFeatures, rank] = t.dims as [number, number];
      const outFeatures = bInfo.dims[1]!;
      const heads = qkHeads(hfName, config);
      const bRaw = file.readTensor(bInfo.name);
      pairs.set(hfName, {
        a: file.readTensor(t.name),
        b: heads ? unpermuteRows(bRaw, heads, rank) : bRaw,
        rank,
        inFeatures,
        outFeatures,
      });
    }
    // alpha = 0 means "scale 1" to llama.cpp; report it as alpha = rank so alpha / rank stays the true factor.
    const firstRank = pairs.values().next().value?.rank ?? 1;
    return { alpha: alpha === 0 ? firstRank : alpha, pairs };
  } finally {
    file.close();
  }
}
