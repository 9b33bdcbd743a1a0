/**
 * The hash a ranker run records of its base model, so ranking refuses a model file that changed since the
 * adapter was trained on it: SHA-256 of a .gguf file's bytes, or of an HF folder's config.json and weight
 * files (name + bytes, sorted by name).
 */
import { createHash } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { hashFile } from "../data/cache.js";

export async function modelHash(path: string): Promise<string> {
  if (!statSync(path).isDirectory()) return `sha256:${await hashFile(path)}`;
  const files = readdirSync(path)
    .filter((f) => f === "config.json" || f.endsWith(".safetensors") || f.endsWith(".gguf"))
    .sort();
  const h = createHash("sha256");
  for (const f of files) h.update(`${f}\0${await hashFile(join(path, f))}\n`);
  return `sha256:${h.digest("hex")}`;
}
