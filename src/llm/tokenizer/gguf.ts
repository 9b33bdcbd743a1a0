/** Builds the right Tokenizer from a GGUF file's tokenizer.ggml.* metadata. */
import { InputError } from "../../util/errors.js";
import type { GgufFile } from "../gguf/reader.js";
import { ByteLevelBpeTokenizer, LLAMA3_PRE } from "./bpe.js";
import { SpmTokenizer } from "./spm.js";
import type { Tokenizer } from "./types.js";

export function tokenizerFromGguf(file: GgufFile): Tokenizer {
  const model = file.get("tokenizer.ggml.model");
  const tokens = file.get("tokenizer.ggml.tokens");
  if (!Array.isArray(tokens)) throw new InputError(`${file.path}: no tokenizer.ggml.tokens array`);
  const types = (file.get("tokenizer.ggml.token_type") as number[] | undefined) ?? tokens.map(() => 1);
  const id = (key: string): number | null => {
    const v = file.get(key);
    return typeof v === "number" ? v : null;
  };
  const flag = (key: string, fallback: boolean): boolean => {
    const v = file.get(key);
    return typeof v === "boolean" ? v : fallback;
  };
  if (model === "llama") {
    return new SpmTokenizer({
      tokens: tokens as string[],
      scores: (file.get("tokenizer.ggml.scores") as number[] | undefined) ?? tokens.map(() => 0),
      types,
      bosId: id("tokenizer.ggml.bos_token_id"),
      eosId: id("tokenizer.ggml.eos_token_id"),
      unkId: id("tokenizer.ggml.unknown_token_id"),
      addBos: flag("tokenizer.ggml.add_bos_token", true),
      addSpacePrefix: flag("tokenizer.ggml.add_space_prefix", true),
    });
  }
  if (model === "gpt2") {
    const merges = file.get("tokenizer.ggml.merges");
    if (!Array.isArray(merges))
      throw new InputError(`${file.path}: gpt2 tokenizer without tokenizer.ggml.merges`);
    const pre = String(file.get("tokenizer.ggml.pre") ?? "default");
    return new ByteLevelBpeTokenizer({
      tokens: tokens as string[],
      types,
      merges: merges as string[],
      pre,
      bosId: id("tokenizer.ggml.bos_token_id"),
      eosId: id("tokenizer.ggml.eos_token_id"),
      addBos: flag("tokenizer.ggml.add_bos_token", LLAMA3_PRE.has(pre)),
    });
  }
  throw new InputError(
    `${file.path}: tokenizer.ggml.model "${String(model)}" is not supported (supported: "llama" SentencePiece, "gpt2" byte-level BPE)`,
  );
}
