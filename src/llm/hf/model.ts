/**
 * A Hugging Face model folder (config.json + model.safetensors or model.safetensors.index.json shards)
 * as a WeightSource. HF tensors are already in the canonical names and layout (src/llm/config.ts).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../../util/errors.js";
import {
  type LlamaArchitecture,
  type LlamaConfig,
  type RopeScaling,
  validateConfig,
  type WeightSource,
} from "../config.js";
import { LazySafetensors } from "./safetensors-lazy.js";

const ARCHITECTURES: readonly LlamaArchitecture[] = ["llama", "mistral", "qwen2"];

function readJson(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new InputError(`${path}: cannot read (${(err as Error).message})`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new InputError(`${path}: not valid JSON (${(err as Error).message})`);
  }
}

/** LlamaConfig from a parsed config.json; `path` is for messages. */
export function llamaConfigFromHf(json: Record<string, unknown>, path: string): LlamaConfig {
  const modelType = json.model_type;
  if (typeof modelType !== "string" || !ARCHITECTURES.includes(modelType as LlamaArchitecture)) {
    throw new InputError(
      `${path}: model_type "${String(modelType)}" is not supported (supported: ${ARCHITECTURES.join(", ")})`,
    );
  }
  const architecture = modelType as LlamaArchitecture;
  const num = (field: string, fallback?: number): number => {
    const v = json[field];
    if (typeof v === "number") return v;
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new InputError(`${path}: missing field ${field}`);
    }
    throw new InputError(`${path}: field ${field} must be a number, got ${JSON.stringify(v)}`);
  };
  const tokenId = (field: string): number | null => {
    const v = json[field];
    if (typeof v === "number") return v;
    if (Array.isArray(v) && typeof v[0] === "number") return v[0]; // e.g. Llama 3.1 lists several EOS ids
    return null;
  };
  const hiddenSize = num("hidden_size");
  const numHeads = num("num_attention_heads");
  const attentionBiasFlag = json.attention_bias === true;
  const config: LlamaConfig = {
    architecture,
    vocabSize: num("vocab_size"),
    hiddenSize,
    intermediateSize: num("intermediate_size"),
    numLayers: num("num_hidden_layers"),
    numHeads,
    numKvHeads: num("num_key_value_heads", numHeads),
    headDim: num("head_dim", hiddenSize / numHeads),
    rmsNormEps: num("rms_norm_eps", 1e-6),
    ropeTheta: num("rope_theta", 10000),
    ropeScaling: parseRopeScaling(json.rope_scaling, path),
    maxPositionEmbeddings: num("max_position_embeddings", 2048),
    tieWordEmbeddings: json.tie_word_embeddings === true,
    // Qwen2 always has q/k/v biases and no o_proj bias; Llama's attention_bias covers all four.
    attentionBias: architecture === "qwen2" || attentionBiasFlag,
    outputBias: architecture === "llama" && attentionBiasFlag,
    bosTokenId: tokenId("bos_token_id"),
    eosTokenId: tokenId("eos_token_id"),
  };
  validateConfig(config, path);
  return config;
}

function parseRopeScaling(raw: unknown, path: string): RopeScaling | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== "object") throw new InputError(`${path}: rope_scaling must be an object`);
  const r = raw as Record<string, unknown>;
  const type = (r.rope_type ?? r.type) as string | undefined;
  if (type === "default") return null;
  if (type !== "linear" && type !== "llama3" && type !== "dynamic" && type !== "yarn") {
    throw new InputError(`${path}: rope_scaling type "${String(type)}" is not supported`);
  }
  if (typeof r.factor !== "number") throw new InputError(`${path}: rope_scaling.factor must be a number`);
  return {
    type,
    factor: r.factor,
    lowFreqFactor: typeof r.low_freq_factor === "number" ? r.low_freq_factor : undefined,
    highFreqFactor: typeof r.high_freq_factor === "number" ? r.high_freq_factor : undefined,
    originalMaxPositionEmbeddings:
      typeof r.original_max_position_embeddings === "number" ? r.original_max_position_embeddings : undefined,
  };
}

export class HfModel implements WeightSource {
  private readonly shardOf = new Map<string, LazySafetensors>();
  private readonly shards: LazySafetensors[] = [];

  private constructor(
    readonly path: string,
    readonly config: LlamaConfig,
  ) {}

  static open(dir: string): HfModel {
    const configPath = join(dir, "config.json");
    if (!existsSync(configPath))
      throw new InputError(`${dir}: no config.json (is this a Hugging Face model folder?)`);
    const model = new HfModel(dir, llamaConfigFromHf(readJson(configPath), configPath));
    try {
      const single = join(dir, "model.safetensors");
      const index = join(dir, "model.safetensors.index.json");
      if (existsSync(single)) {
        model.addShard(LazySafetensors.open(single));
      } else if (existsSync(index)) {
        const weightMap = readJson(index).weight_map as Record<string, string> | undefined;
        if (!weightMap || typeof weightMap !== "object")
          throw new InputError(`${index}: no weight_map object`);
        const files = [...new Set(Object.values(weightMap))];
        const opened = new Map(files.map((f) => [f, LazySafetensors.open(join(dir, f))]));
        for (const shard of opened.values()) model.shards.push(shard);
        for (const [name, file] of Object.entries(weightMap)) {
          const shard = opened.get(file)!;
          if (!shard.entries.has(name)) throw new InputError(`${index}: ${name} is not in ${file}`);
          model.shardOf.set(name, shard);
        }
      } else {
        throw new InputError(`${dir}: neither model.safetensors nor model.safetensors.index.json found`);
      }
      return model;
    } catch (err) {
      model.close();
      throw err;
    }
  }

  private addShard(shard: LazySafetensors): void {
    this.shards.push(shard);
    for (const name of shard.entries.keys()) this.shardOf.set(name, shard);
  }

  names(): string[] {
    return [...this.shardOf.keys()];
  }

  has(name: string): boolean {
    return this.shardOf.has(name);
  }

  private entry(name: string) {
    const shard = this.shardOf.get(name);
    if (!shard) throw new InputError(`${this.path}: no tensor ${name}`);
    return { shard, entry: shard.entries.get(name)! };
  }

  shape(name: string): number[] {
    return [...this.entry(name).entry.shape];
  }

  dtype(name: string): string {
    return this.entry(name).entry.dtype;
  }

  get(name: string): Float32Array {
    return this.entry(name).shard.read(name);
  }

  ropeFreqFactors(): Float32Array | null {
    return null;
  }

  close(): void {
    for (const s of this.shards) s.close();
  }
}
