/**
 * The LLM ranker a server uses: a backend (engine, llama.cpp, remote) with the run's prompt settings and
 * verbalizer, resolved from the run's trained ranker (ranker/config.json) or an explicit model file.
 */
import type { RankerBackend } from "../ranker/backend.js";
import { PromptBuilder } from "../ranker/prompt.js";
import { resolveRankerWeights } from "../ranker/run-config.js";
import { tokenizerFrom } from "../ranker/training/model-source.js";
import { Verbalizer } from "../ranker/verbalizer.js";
import { InputError } from "../util/errors.js";
import type { RankerTools } from "./ranking.js";

export type RankerKind = "none" | "engine" | "llamacpp" | "remote";
export const RANKER_KINDS: readonly RankerKind[] = ["none", "engine", "llamacpp", "remote"];

export interface RankerSetupOptions {
  kind: Exclude<RankerKind, "none">;
  /** Model file (default: the run's trained ranker). */
  model?: string;
  /** LoRA adapter (default: the run's, "none" for the base model). */
  adapter?: string;
  /** llama.cpp threads (default 2) and parallel sequences (default 4). */
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
  const w = resolveRankerWeights(runDir, o.kind, o.model, o.adapter);
  const { tokenizer } = tokenizerFrom(w.tokenizer ?? w.model);
  const prompts = new PromptBuilder(tokenizer, {
    maxHistory: w.prompt.maxHistory,
    maxTitleTokens: w.prompt.maxTitleTokens,
    maxPromptTokens: w.prompt.maxPromptTokens,
  });
  const verbalizer = Verbalizer.forPrompt(prompts, {
    count: w.prompt.numCandidates,
    mode: w.prompt.letterMode,
  });
  let backend: RankerBackend;
  if (o.kind === "engine") {
    const { EngineBackend } = await import("../ranker/backends/engine.js");
    backend = await EngineBackend.open({ modelPath: w.model, ...(w.adapter ? { loraPath: w.adapter } : {}) });
  } else if (o.kind === "llamacpp") {
    const { LlamaCppBackend } = await import("../ranker/backends/llamacpp.js");
    backend = await LlamaCppBackend.open({
      modelPath: w.model,
      ...(w.adapter ? { loraPath: w.adapter } : {}),
      threads: o.threads ?? 2,
      sequences: o.sequences ?? 4,
    });
  } else {
    if (!o.url) throw new InputError("--ranker remote needs --ranker-url");
    const { RemoteBackend } = await import("../ranker/backends/remote.js");
    backend = new RemoteBackend({
      url: o.url,
      ...(o.servedModel ? { model: o.servedModel } : {}),
      ...(o.apiKey ? { apiKey: o.apiKey } : {}),
      decode: (ids) => tokenizer.decode(ids),
    });
  }
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
