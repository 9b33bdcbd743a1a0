/**
 * A summary of a model file or folder (GGUF file or HF folder): architecture, sizes, tensor types,
 * tokenizer. `llamarec model info` adds the ranker's letter ids (src/ranker/model-info.ts).
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../util/errors.js";
import type { LlamaConfig, WeightSource } from "./config.js";
import { GgufModel } from "./gguf/model.js";
import { GgufFile } from "./gguf/reader.js";
import { ggmlTypeName } from "./gguf/types.js";
import { HfModel } from "./hf/model.js";
import { tokenizerFromGguf } from "./tokenizer/gguf.js";
import { HfTokenizer } from "./tokenizer/hf.js";
import type { Tokenizer } from "./tokenizer/types.js";

export interface ModelInfo {
  path: string;
  format: "gguf" | "hf";
  /** GGUF general.type when present ("model", "adapter"). */
  fileType: string | null;
  architecture: string;
  config: LlamaConfig | null;
  parameters: number;
  bytesOnDisk: number;
  /** dtype → tensor count and parameters. */
  tensorTypes: Record<string, { tensors: number; parameters: number }>;
  tokenizer: {
    kind: string;
    vocabSize: number;
    bosId: number | null;
    eosId: number | null;
    addBos: boolean;
  } | null;
}

function summarizeTokenizer(tok: Tokenizer): ModelInfo["tokenizer"] {
  return {
    kind: tok.kind,
    vocabSize: tok.vocabSize,
    bosId: tok.bosId,
    eosId: tok.eosId,
    addBos: tok.addBosByDefault,
  };
}

export function describeModel(path: string): ModelInfo {
  return describeModelAndTokenizer(path).info;
}

/** The summary and the file's tokenizer (null when it has none), for callers that add their own view. */
export function describeModelAndTokenizer(path: string): { info: ModelInfo; tokenizer: Tokenizer | null } {
  if (!existsSync(path)) throw new InputError(`${path}: no such file or folder`);
  const isDir = statSync(path).isDirectory();
  return isDir ? describeHf(path) : describeGguf(path);
}

function describeGguf(path: string): { info: ModelInfo; tokenizer: Tokenizer | null } {
  const file = GgufFile.open(path);
  try {
    const tensorTypes: ModelInfo["tensorTypes"] = {};
    let parameters = 0;
    for (const t of file.tensors) {
      const name = ggmlTypeName(t.type);
      tensorTypes[name] ??= { tensors: 0, parameters: 0 };
      tensorTypes[name].tensors++;
      tensorTypes[name].parameters += t.elements;
      parameters += t.elements;
    }
    const fileType =
      typeof file.get("general.type") === "string" ? (file.get("general.type") as string) : null;
    let config: LlamaConfig | null = null;
    if (fileType !== "adapter") {
      try {
        config = new GgufModel(file).config;
      } catch {
        config = null; // unsupported architecture: still show what the header says
      }
    }
    let tok: Tokenizer | null = null;
    try {
      tok = file.get("tokenizer.ggml.model") ? tokenizerFromGguf(file) : null;
    } catch {
      tok = null;
    }
    const info: ModelInfo = {
      path,
      format: "gguf",
      fileType,
      architecture: file.architecture,
      config,
      parameters,
      bytesOnDisk: statSync(path).size,
      tensorTypes,
      tokenizer: tok ? summarizeTokenizer(tok) : null,
    };
    return { info, tokenizer: tok };
  } finally {
    file.close();
  }
}

function describeHf(dir: string): { info: ModelInfo; tokenizer: Tokenizer | null } {
  const model: WeightSource = HfModel.open(dir);
  try {
    const tensorTypes: ModelInfo["tensorTypes"] = {};
    let parameters = 0;
    let bytes = 0;
    for (const n of model.names()) {
      const count = model.shape(n).reduce((a, b) => a * b, 1);
      const dtype = model.dtype(n);
      tensorTypes[dtype] ??= { tensors: 0, parameters: 0 };
      tensorTypes[dtype].tensors++;
      tensorTypes[dtype].parameters += count;
      parameters += count;
    }
    for (const f of readdirSync(dir)) if (f.endsWith(".safetensors")) bytes += statSync(join(dir, f)).size;
    const tok = existsSync(join(dir, "tokenizer.json")) ? HfTokenizer.fromFolder(dir) : null;
    const info: ModelInfo = {
      path: dir,
      format: "hf",
      fileType: "model",
      architecture: model.config.architecture,
      config: model.config,
      parameters,
      bytesOnDisk: bytes,
      tensorTypes,
      tokenizer: tok ? summarizeTokenizer(tok) : null,
    };
    return { info, tokenizer: tok };
  } finally {
    model.close();
  }
}

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

/** Human-readable multi-line report. */
export function formatModelInfo(info: ModelInfo): string {
  const lines = [`${info.path} (${info.format}${info.fileType ? `, ${info.fileType}` : ""})`];
  lines.push(`architecture: ${info.architecture || "?"}`);
  const c = info.config;
  if (c) {
    lines.push(
      `layers ${c.numLayers}, hidden ${c.hiddenSize}, ffn ${c.intermediateSize}, heads ${c.numHeads} (kv ${c.numKvHeads}, dim ${c.headDim}), vocab ${c.vocabSize}`,
      `rms_norm_eps ${c.rmsNormEps}, rope_theta ${c.ropeTheta}${c.ropeScaling ? `, rope_scaling ${c.ropeScaling.type}×${c.ropeScaling.factor}` : ""}, context ${c.maxPositionEmbeddings}, tied embeddings ${c.tieWordEmbeddings ? "yes" : "no"}, qkv bias ${c.attentionBias ? "yes" : "no"}`,
    );
  }
  lines.push(
    `parameters: ${human(info.parameters)} (${info.parameters}), ${human(info.bytesOnDisk)}B on disk`,
  );
  lines.push(
    `tensor types: ${Object.entries(info.tensorTypes)
      .map(([t, v]) => `${t} ×${v.tensors} (${human(v.parameters)})`)
      .join(", ")}`,
  );
  const t = info.tokenizer;
  lines.push(
    t
      ? `tokenizer: ${t.kind}, vocab ${t.vocabSize}, bos ${t.bosId ?? "-"}, eos ${t.eosId ?? "-"}, adds BOS ${t.addBos ? "yes" : "no"}`
      : "tokenizer: none",
  );
  return lines.join("\n");
}
