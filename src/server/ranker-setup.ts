/**
 * The LLM ranker a server uses: a backend (engine, llama.cpp, remote) with the run's prompt settings and
 * verbalizer, resolved from the run's trained ranker (ranker/config.json) or an explicit model file.
 */
import { openRankerBackend } from "../ranker/backends/open.js";
import { promptTools, resolveRankerWeights } from "../ranker/run-config.js";
import { tokenizerFrom } from "../ranker/training/model-source.js";
import { InputError } from "../util/errors.js";
import type { RankerTools } from "./ranking.js";
import { CachingTokenizer } from "./token-cache.js";

export type RankerKind = "none" | "engine" | "llamacpp" | "remote";
export const RANKER_KINDS: readonly RankerKind[] = ["none", "engine", "llamacpp", "remote"];

export interface RankerSetupOptions {
  kind: Exclude<RankerKind, "none">;
  /** Model file (default: the run's trained ranker). */
  model?: string;
  /** LoRA adapter (default: the run's, "none" for the base model). */
  adapter?: string;
  /** llama.cpp threads (default: LLAMAREC_THREADS, else min(2, cores)) and parallel sequences (default 4). */
  threads?: number;
  sequences?: number;
  /** remote: server root and served model name. */
  url?: string;
  servedModel?: string;
  apiKey?: string;
}

export async function openRankerTools(
  runDir: string,
  o: RankerSetupOptions,
): Promise<RankerTools & { model: string; adapter: string | null }> {
  if (o.kind === "remote" && !o.url) throw new InputError("--ranker remote needs --ranker-url");
  const w = resolveRankerWeights(runDir, o.kind, o.model, o.adapter);
  // Titles repeat from request to request: their encodings are remembered (token-cache.ts).
  const tokenizer = new CachingTokenizer(tokenizerFrom(w.tokenizer ?? w.model).tokenizer);
  const { prompts, verbalizer } = promptTools({ tokenizer }, w.prompt);
  const backend = await openRankerBackend(o.kind, {
    model: w.model,
    adapter: w.adapter,
    ...(o.threads === undefined ? {} : { threads: o.threads }),
    sequences: o.sequences ?? 4,
    lettersOnly: true,
    ...(o.kind === "remote"
      ? {
          remote: {
            url: o.url!,
            ...(o.servedModel ? { model: o.servedModel } : {}),
            ...(o.apiKey ? { apiKey: o.apiKey } : {}),
          },
          decode: (ids: readonly number[]) => tokenizer.decode(ids),
        }
      : {}),
  });
  return {
    backend,
    prompts,
    verbalizer,
    maxHistory: w.prompt.maxHistory,
    numCandidates: w.prompt.numCandidates,
    model: w.model,
    adapter: w.adapter,
  };
}
