/**
 * PEFT adapter folders, as `model.save_pretrained()` writes them for a LoRA on a Llama-family model:
 * adapter_config.json + adapter_model.safetensors with keys
 * "base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight" (A [r, in], B [out, r]).
 * Readable by PEFT (PeftModel.from_pretrained) and vLLM --enable-lora; adapters trained with PEFT load here.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../../tensor/rng.js";
import { loadSafetensors, type NamedArray, saveSafetensors } from "../../tensor/safetensors.js";
import { writeJsonAtomic } from "../../util/atomic.js";
import { InputError } from "../../util/errors.js";
import type { LlamaForCausalLM } from "../model/llama.js";
import { LORA_TARGETS, type LoraConfig } from "./config.js";

export const PEFT_CONFIG_FILE = "adapter_config.json";
export const PEFT_WEIGHTS_FILE = "adapter_model.safetensors";
const KEY_PREFIX = "base_model.model.";

export interface PeftExportOptions {
  /** Recorded as base_model_name_or_path (HF id or path of the base model). */
  baseModel?: string;
}

/** adapter_config.json with the fields (and defaults) PEFT's LoraConfig writes. */
export function peftAdapterConfig(config: LoraConfig, baseModel: string | null): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModel,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: config.alpha,
    lora_dropout: config.dropout,
    megatron_config: null,
    megatron_core: "megatron.core",
    modules_to_save: null,
    peft_type: "LORA",
    r: config.r,
    rank_pattern: {},
    revision: null,
    target_modules: [...config.targetModules],
    task_type: "CAUSAL_LM",
    use_dora: false,
    use_rslora: config.useRslora ?? false,
  };
}

/** Writes the model's attached adapters as a PEFT folder (each file atomically). */
export async function exportPeft(
  model: LlamaForCausalLM,
  dir: string,
  options: PeftExportOptions = {},
): Promise<void> {
  const lora = model.loraAttachment;
  if (!lora) throw new Error("exportPeft: the model has no LoRA adapters attached");
  const tensors = new Map<string, NamedArray>();
  for (const [name, p] of model.loraParameters())
    tensors.set(KEY_PREFIX + name, { shape: [...p.shape], data: p.data });
  saveSafetensors(join(dir, PEFT_WEIGHTS_FILE), tensors, { format: "pt" });
  await writeJsonAtomic(
    join(dir, PEFT_CONFIG_FILE),
    peftAdapterConfig(lora.config, options.baseModel ?? null),
  );
}

function parsePeftConfig(path: string): LoraConfig {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new InputError(`${path}: cannot read PEFT adapter config (${(err as Error).message})`);
  }
  const fail = (field: string, why: string): never => {
    throw new InputError(`${path}: field ${field}: ${why}`);
  };
  if (raw.peft_type !== undefined && raw.peft_type !== "LORA")
    fail("peft_type", `only LORA is supported, got ${JSON.stringify(raw.peft_type)}`);
  if (typeof raw.r !== "number" || !Number.isInteger(raw.r) || raw.r <= 0)
    fail("r", "must be a positive integer");
  if (typeof raw.lora_alpha !== "number") fail("lora_alpha", "must be a number");
  if (raw.use_dora === true) fail("use_dora", "DoRA adapters are not supported");
  if (raw.fan_in_fan_out === true) fail("fan_in_fan_out", "transposed (Conv1D) adapters are not supported");
  if (raw.bias !== undefined && raw.bias !== "none")
    fail("bias", `only "none" is supported, got ${JSON.stringify(raw.bias)}`);
  for (const f of ["rank_pattern", "alpha_pattern"]) {
    const v = raw[f];
    if (v && typeof v === "object" && Object.keys(v).length > 0)
      fail(f, "per-module ranks/alphas are not supported");
  }
  const targets = raw.target_modules;
  const list = Array.isArray(targets) ? targets.map(String) : [];
  return {
    r: raw.r as number,
    alpha: raw.lora_alpha as number,
    dropout: typeof raw.lora_dropout === "number" ? raw.lora_dropout : 0,
    // A regex string or "all-linear" is resolved from the weight keys instead.
    targetModules: list.filter((t) => (LORA_TARGETS as readonly string[]).includes(t)),
    useRslora: raw.use_rslora === true,
  };
}

const KEY_RE =
  /^(?:base_model\.model\.)?(model\.layers\.(\d+)\.(?:self_attn|mlp)\.([a-z_]+))\.lora_([AB])(?:\.default)?\.weight$/;

/** Attaches the adapters of a PEFT folder to `model` (replacing any attached ones). */
export function importPeft(model: LlamaForCausalLM, dir: string): LoraConfig {
  const configPath = join(dir, PEFT_CONFIG_FILE);
  const weightsPath = join(dir, PEFT_WEIGHTS_FILE);
  const parsed = parsePeftConfig(configPath);
  const weights = loadSafetensors(weightsPath);
  const found = new Map<string, { A?: NamedArray; B?: NamedArray }>();
  const targets = new Set<string>();
  for (const [key, value] of weights) {
    const m = KEY_RE.exec(key);
    if (!m)
      throw new InputError(
        `${weightsPath}: unexpected tensor ${key} (only LoRA A/B of decoder projections are supported)`,
      );
    if (!(LORA_TARGETS as readonly string[]).includes(m[3]!))
      throw new InputError(`${weightsPath}: ${key}: unknown module ${m[3]}`);
    targets.add(m[3]!);
    const entry = found.get(m[1]!) ?? {};
    entry[m[4] as "A" | "B"] = value;
    found.set(m[1]!, entry);
  }
  if (found.size === 0) throw new InputError(`${weightsPath}: no LoRA weights`);
  const config: LoraConfig = { ...parsed, targetModules: LORA_TARGETS.filter((t) => targets.has(t)) };
  model.detachLora();
  const attached = model.attachLora(config, new Rng(0));
  for (const [path, { A, B }] of found) {
    const adapter = attached.adapters.get(path);
    if (!adapter) throw new InputError(`${weightsPath}: ${path} does not exist in this model`);
    if (!A || !B) throw new InputError(`${weightsPath}: ${path} needs both lora_A and lora_B`);
    for (const [label, src, dst] of [
      ["lora_A", A, adapter.A],
      ["lora_B", B, adapter.B],
    ] as const) {
      if (src.shape.length !== 2 || src.shape[0] !== dst.shape[0] || src.shape[1] !== dst.shape[1])
        throw new InputError(
          `${weightsPath}: ${path}.${label} has shape [${src.shape}], expected [${dst.shape}]`,
        );
      dst.data.set(src.data);
    }
  }
  // Layers the file does not cover (layers_to_transform) keep B = 0: no effect, as in PEFT.
  for (const [path, adapter] of attached.adapters) if (!found.has(path)) adapter.A.data.fill(0);
  return config;
}
