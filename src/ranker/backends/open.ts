/**
 * The one place that turns a backend kind and its options into a RankerBackend: our engine (a model file or
 * an already loaded model), llama.cpp in process (node-llama-cpp, loaded lazily), or a remote
 * OpenAI-compatible server. Used by ranking a run, the pipeline and the server alike.
 */
import type { LlamaForCausalLM } from "../../llm/model/llama.js";
import { InputError } from "../../util/errors.js";
import type { RankerBackend } from "../backend.js";
import type { RemoteBackendOptions } from "./remote.js";

export type BackendKind = "engine" | "llamacpp" | "remote";
export const BACKEND_KINDS: readonly BackendKind[] = ["engine", "llamacpp", "remote"];

export interface OpenRankerBackendOptions {
  /** Model file (GGUF) or HF folder (engine); GGUF file (llama.cpp). Not used by remote. */
  model?: string;
  /** engine only: an already loaded model (e.g. the one just trained) instead of `model`. */
  loaded?: LlamaForCausalLM;
  /** LoRA adapter: PEFT folder or GGUF (engine), GGUF (llama.cpp). */
  adapter?: string | null;
  /** llama.cpp CPU threads (default: LLAMAREC_THREADS, else min(2, cores)) and parallel sequences (backend default when absent). */
  threads?: number;
  sequences?: number;
  /** llama.cpp: letter scores normalised over the letters only (cheaper; see LlamaCppBackendOptions). */
  lettersOnly?: boolean;
  /** remote: server settings (url required). */
  remote?: Omit<RemoteBackendOptions, "decode">;
  /** remote: ids → text, for servers that take text prompts. */
  decode?: (ids: readonly number[]) => string;
}

export async function openRankerBackend(
  kind: BackendKind,
  o: OpenRankerBackendOptions,
): Promise<RankerBackend> {
  if (kind === "engine") {
    const { EngineBackend } = await import("./engine.js");
    if (o.loaded) {
      if (o.adapter) {
        const { attachLoraFromPath } = await import("../../llm/lora/load.js");
        attachLoraFromPath(o.loaded, o.adapter);
      }
      return new EngineBackend(o.loaded);
    }
    if (!o.model) throw new InputError("the engine backend needs a model file or folder");
    return EngineBackend.open({ modelPath: o.model, ...(o.adapter ? { loraPath: o.adapter } : {}) });
  }
  if (kind === "llamacpp") {
    if (!o.model) throw new InputError("the llamacpp backend needs a .gguf model file");
    const { LlamaCppBackend } = await import("./llamacpp.js");
    return LlamaCppBackend.open({
      modelPath: o.model,
      ...(o.adapter ? { loraPath: o.adapter } : {}),
      ...(o.threads === undefined ? {} : { threads: o.threads }),
      ...(o.sequences === undefined ? {} : { sequences: o.sequences }),
      ...(o.lettersOnly ? { lettersOnly: true } : {}),
    });
  }
  if (kind === "remote") {
    if (!o.remote?.url) throw new InputError("the remote backend needs a server URL (--url)");
    const { RemoteBackend } = await import("./remote.js");
    return new RemoteBackend({ ...o.remote, ...(o.decode ? { decode: o.decode } : {}) });
  }
  throw new InputError(`unknown ranker backend "${String(kind)}"; use ${BACKEND_KINDS.join(", ")}`);
}
