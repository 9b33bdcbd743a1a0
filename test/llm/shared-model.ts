import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** /work/shared/models/llama-2-tiny-random.gguf (real 32k Llama 2 vocabulary); tests skip when absent. */
export const SHARED_TINY_GGUF = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "shared",
  "models",
  "llama-2-tiny-random.gguf",
);
export const HAVE_SHARED = existsSync(SHARED_TINY_GGUF);
if (!HAVE_SHARED) {
  console.warn(
    `[llamarec tests] ${SHARED_TINY_GGUF} not found: skipping tests that need the shared Llama 2 tokenizer`,
  );
}
