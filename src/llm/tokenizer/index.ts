/** Opens the tokenizer of a model: a GGUF file (tokenizer.ggml.*) or an HF folder (tokenizer.json). */
import { statSync } from "node:fs";
import { InputError } from "../../util/errors.js";
import { GgufFile } from "../gguf/reader.js";
import { tokenizerFromGguf } from "./gguf.js";
import { HfTokenizer } from "./hf.js";
import type { Tokenizer } from "./types.js";

export type { DecodeOptions, EncodeOptions, Tokenizer } from "./types.js";

export function loadTokenizer(path: string): Tokenizer {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new InputError(`${path}: no such file or folder`);
  }
  if (isDir) return HfTokenizer.fromFolder(path);
  const file = GgufFile.open(path);
  try {
    return tokenizerFromGguf(file);
  } finally {
    file.close();
  }
}
