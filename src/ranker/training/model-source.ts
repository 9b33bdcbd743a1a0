/**
 * Where the ranker's language model comes from, from one `--model` string:
 * - a .gguf file: weights (dequantised to float32) and tokenizer from the file;
 * - a Hugging Face folder (config.json + model.safetensors[.index.json] + tokenizer.json);
 * - "scratch:<size>" (tiny, small): a randomly initialised Llama trained fully from scratch; the vocabulary
 *   comes from `tokenizer` (a .gguf file or HF folder), e.g. the Llama 2 tokenizer of any Llama 2 GGUF.
 * GGUF tokenizer metadata is kept so a fine-tuned scratch model or an adapter can be written back as GGUF
 * for llama.cpp.
 */
import { existsSync, statSync } from "node:fs";
import { GgufFile } from "../../llm/gguf/reader.js";
import type { GgufValue } from "../../llm/gguf/types.js";
import { LlamaForCausalLM } from "../../llm/model/llama.js";
import { loadLlama } from "../../llm/model/load.js";
import { scratchConfig } from "../../llm/model/scratch.js";
import { tokenizerFromGguf } from "../../llm/tokenizer/gguf.js";
import { HfTokenizer } from "../../llm/tokenizer/hf.js";
import type { Tokenizer } from "../../llm/tokenizer/types.js";
import { Rng } from "../../tensor/rng.js";
import { InputError } from "../../util/errors.js";

export type ModelKind = "gguf" | "hf" | "scratch";

export interface RankerModel {
  model: LlamaForCausalLM;
  tokenizer: Tokenizer;
  /** tokenizer.* GGUF keys (null for HF tokenizers): needed to write GGUF models/adapters. */
  tokenizerMetadata: Map<string, GgufValue> | null;
  kind: ModelKind;
  /** The --model string. */
  spec: string;
}

export interface TokenizerSource {
  tokenizer: Tokenizer;
  metadata: Map<string, GgufValue> | null;
}

/** The tokenizer of a .gguf file or HF folder (without loading weights). */
export function tokenizerFrom(path: string): TokenizerSource {
  if (!existsSync(path)) throw new InputError(`tokenizer source ${path} does not exist`);
  if (statSync(path).isDirectory()) return { tokenizer: HfTokenizer.fromFolder(path), metadata: null };
  const file = GgufFile.open(path);
  try {
    const metadata = new Map([...file.metadata].filter(([k]) => k.startsWith("tokenizer.")));
    return { tokenizer: tokenizerFromGguf(file), metadata };
  } finally {
    file.close();
  }
}

/** HF-style initialisation: every matrix N(0, std²), RMSNorm weights 1. */
export function initScratchWeights(model: LlamaForCausalLM, seed: number, std: number): void {
  const rng = new Rng(seed);
  for (const [name, p] of model.namedParameters()) {
    if (name.endsWith("norm.weight")) p.data.fill(1);
    else for (let i = 0; i < p.size; i++) p.data[i] = std * rng.normal();
  }
}

export interface LoadModelOptions {
  /** Vocabulary source for scratch models (a .gguf file or HF folder); ignored otherwise unless given. */
  tokenizer?: string;
  /** Initialisation seed of scratch models. */
  seed?: number;
  /** Std of scratch initial weights (default 0.02, as HF's initializer_range). */
  initStd?: number;
}

export function isScratchSpec(spec: string): boolean {
  return spec.startsWith("scratch:");
}

export function loadRankerModel(spec: string, options: LoadModelOptions = {}): RankerModel {
  if (isScratchSpec(spec)) {
    scratchConfig(spec, { size: 2, bosId: null, eosId: null }); // unknown size: fail before reading files
    if (!options.tokenizer) {
      throw new InputError(
        `${spec} needs a tokenizer to take the vocabulary from (--tokenizer <file.gguf | HF folder>)`,
      );
    }
    const { tokenizer, metadata } = tokenizerFrom(options.tokenizer);
    const config = scratchConfig(spec, {
      size: tokenizer.vocabSize,
      bosId: tokenizer.bosId,
      eosId: tokenizer.eosId,
    });
    const model = new LlamaForCausalLM(config);
    initScratchWeights(model, options.seed ?? 0, options.initStd ?? 0.02);
    return { model, tokenizer, tokenizerMetadata: metadata, kind: "scratch", spec };
  }
  if (!existsSync(spec))
    throw new InputError(`model ${spec} does not exist (a .gguf file, an HF folder or scratch:<size>)`);
  const model = loadLlama(spec);
  const tok = tokenizerFrom(options.tokenizer ?? spec);
  return {
    model,
    tokenizer: tok.tokenizer,
    tokenizerMetadata: tok.metadata,
    kind: statSync(spec).isDirectory() ? "hf" : "gguf",
    spec,
  };
}
