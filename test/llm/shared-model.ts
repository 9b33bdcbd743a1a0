import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The bundled models/llama-2-tiny-random.gguf (real 32k Llama 2 vocabulary), part of the repo. */
export const TINY_LLAMA2_GGUF = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "models",
  "llama-2-tiny-random.gguf",
);
