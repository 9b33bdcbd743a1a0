/**
 * A GGUF model file as a WeightSource: llama.cpp metadata → LlamaConfig, tensors renamed to HF names and
 * Q/K rows un-permuted for architecture "llama" (see src/llm/config.ts).
 */
import { InputError } from "../../util/errors.js";
import {
  ggufToHfName,
  hfToGgufName,
  type LlamaArchitecture,
  type LlamaConfig,
  unpermuteRows,
  validateConfig,
  type WeightSource,
} from "../config.js";
import { GgufFile } from "./reader.js";
import { ggmlTypeName } from "./types.js";

const SUPPORTED: Record<string, LlamaArchitecture> = { llama: "llama", qwen2: "qwen2" };

export function llamaConfigFromGguf(file: GgufFile): LlamaConfig {
  const arch = file.architecture;
  const architecture = SUPPORTED[arch];
  if (!architecture) {
    throw new InputError(
      `${file.path}: general.architecture "${arch}" is not supported (supported: ${Object.keys(SUPPORTED).join(", ")})`,
    );
  }
  const num = (key: string, fallback?: number): number => {
    const v = file.get(`${arch}.${key}`);
    if (typeof v === "number") return v;
    if (fallback !== undefined) return fallback;
    throw new InputError(`${file.path}: missing metadata ${arch}.${key}`);
  };
  const tokens = file.get("tokenizer.ggml.tokens");
  const hiddenSize = num("embedding_length");
  const numHeads = num("attention.head_count");
  const embd = file.tensor("token_embd.weight");
  const scalingType = file.get(`${arch}.rope.scaling.type`);
  const scalingFactor = file.get(`${arch}.rope.scaling.factor`);
  const idOrNull = (key: string) => {
    const v = file.get(key);
    return typeof v === "number" ? v : null;
  };
  const config: LlamaConfig = {
    architecture,
    vocabSize: num("vocab_size", embd?.dims[1] ?? (Array.isArray(tokens) ? tokens.length : 0)),
    hiddenSize,
    intermediateSize: num("feed_forward_length"),
    numLayers: num("block_count"),
    numHeads,
    numKvHeads: num("attention.head_count_kv", numHeads),
    headDim: num("attention.key_length", hiddenSize / numHeads),
    rmsNormEps: num("attention.layer_norm_rms_epsilon", 1e-5),
    ropeTheta: num("rope.freq_base", 10000),
    ropeScaling:
      scalingType === "linear" && typeof scalingFactor === "number" && scalingFactor !== 1
        ? { type: "linear", factor: scalingFactor }
        : null,
    maxPositionEmbeddings: num("context_length", 2048),
    tieWordEmbeddings: !file.tensor("output.weight"),
    attentionBias: !!file.tensor("blk.0.attn_q.bias"),
    outputBias: !!file.tensor("blk.0.attn_output.bias"),
    bosTokenId: idOrNull("tokenizer.ggml.bos_token_id"),
    eosTokenId: idOrNull("tokenizer.ggml.eos_token_id"),
  };
  validateConfig(config, file.path);
  return config;
}

export class GgufModel implements WeightSource {
  readonly config: LlamaConfig;
  readonly path: string;
  private readonly hfToGguf = new Map<string, string>();

  constructor(readonly file: GgufFile) {
    this.path = file.path;
    const config = llamaConfigFromGguf(file);
    const factors = file.tensor("rope_freqs.weight") ? file.readTensor("rope_freqs.weight") : null;
    this.config = factors ? { ...config, ropeFreqFactors: factors } : config;
    for (const t of file.tensors) {
      const hf = ggufToHfName(t.name);
      if (hf) this.hfToGguf.set(hf, t.name);
    }
  }

  static open(path: string): GgufModel {
    const file = GgufFile.open(path);
    try {
      return new GgufModel(file);
    } catch (err) {
      file.close();
      throw err;
    }
  }

  names(): string[] {
    return [...this.hfToGguf.keys()];
  }

  has(name: string): boolean {
    return this.hfToGguf.has(name);
  }

  private info(name: string) {
    const gguf = this.hfToGguf.get(name) ?? hfToGgufName(name);
    const info = gguf ? this.file.tensor(gguf) : undefined;
    if (!info) throw new InputError(`${this.path}: no tensor for ${name}`);
    return info;
  }

  shape(name: string): number[] {
    return [...this.info(name).dims].reverse();
  }

  dtype(name: string): string {
    return ggmlTypeName(this.info(name).type);
  }

  get(name: string): Float32Array {
    const info = this.info(name);
    const data = this.file.readTensor(info.name);
    if (this.config.architecture !== "llama") return data;
    const qk = /^blk\.\d+\.attn_([qk])\.(weight|bias)$/.exec(info.name);
    if (!qk) return data;
    const heads = qk[1] === "q" ? this.config.numHeads : this.config.numKvHeads;
    const cols = qk[2] === "weight" ? info.dims[0]! : 1;
    return unpermuteRows(data, heads, cols);
  }

  ropeFreqFactors(): Float32Array | null {
    return this.config.ropeFreqFactors ?? null;
  }

  close(): void {
    this.file.close();
  }
}
