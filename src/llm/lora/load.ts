/** Attaches an adapter from disk, whichever format: a PEFT folder or a GGUF LoRA file. */
import { statSync } from "node:fs";
import { InputError } from "../../util/errors.js";
import type { LlamaForCausalLM } from "../model/llama.js";
import type { LoraConfig } from "./config.js";
import { importLoraGguf } from "./gguf.js";
import { importPeft } from "./peft.js";

export function attachLoraFromPath(model: LlamaForCausalLM, path: string): LoraConfig {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new InputError(`LoRA adapter ${path} does not exist`);
  }
  if (isDir) return importPeft(model, path);
  if (path.endsWith(".gguf")) return importLoraGguf(model, path);
  throw new InputError(`LoRA adapter ${path}: expected a PEFT folder or a .gguf file`);
}
