/** Opens a model for our engine: a GGUF file or a Hugging Face folder, read fully into float32. */
import { statSync } from "node:fs";
import type { WeightSource } from "../config.js";
import { GgufModel } from "../gguf/model.js";
import { HfModel } from "../hf/model.js";
import { LlamaForCausalLM } from "./llama.js";

export function openWeightSource(path: string): WeightSource {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    // Let the format loader report the missing file.
  }
  return isDir ? HfModel.open(path) : GgufModel.open(path);
}

export function loadLlama(path: string): LlamaForCausalLM {
  const src = openWeightSource(path);
  try {
    return LlamaForCausalLM.fromWeights(src);
  } finally {
    src.close();
  }
}
