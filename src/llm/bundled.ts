/** Models shipped in the package's models/ folder (see models/README.md for source and licence). */
import { join } from "node:path";
import { packageRoot } from "../data/load.js";

/** Random-weight Llama 2 architecture with the real 32k Llama 2 tokenizer (MIT, from ollama's test data). */
export function bundledTinyGguf(): string {
  return join(packageRoot(), "models", "llama-2-tiny-random.gguf");
}
