/**
 * Ranker backend on our own TypeScript engine: one forward pass per prompt (no KV cache), next-token
 * log-probabilities over the full vocabulary at the letters, the same quantity the llama.cpp backend
 * returns, so the two are directly comparable.
 */

import type { LlamaForCausalLM } from "../../llm/model/llama.js";
import { loadLlama } from "../../llm/model/load.js";
import type { PromptIds, RankerBackend } from "../backend.js";

export interface EngineBackendOptions {
  /** GGUF file or HF folder (any weight type the loaders decode; computed in float32). */
  modelPath: string;
  /** Optional adapter: a PEFT folder (adapter_config.json + adapter_model.safetensors) or a GGUF LoRA. */
  loraPath?: string;
}

export class EngineBackend implements RankerBackend {
  readonly name = "engine";
  private closed = false;

  constructor(readonly model: LlamaForCausalLM) {
    model.eval();
  }

  static async open(options: EngineBackendOptions): Promise<EngineBackend> {
    const model = loadLlama(options.modelPath);
    if (options.loraPath) {
      const { attachLoraFromPath } = await import("../../llm/lora/load.js");
      attachLoraFromPath(model, options.loraPath);
    }
    return new EngineBackend(model);
  }

  async scorePrompts(prompts: readonly PromptIds[]): Promise<Float32Array[]> {
    if (this.closed) throw new Error("engine backend is closed");
    const out: Float32Array[] = [];
    for (const prompt of prompts) {
      if (prompt.ids.length === 0) throw new Error("cannot score an empty prompt");
      const logits = this.model.lastLogits(Int32Array.from(prompt.ids));
      let max = -Infinity;
      for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
      let sum = 0;
      for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
      const logZ = max + Math.log(sum);
      out.push(Float32Array.from(prompt.letterIds, (id) => logits[id]! - logZ));
      // Let other work (progress output, signals) run between long forward passes.
      await new Promise((resolve) => setImmediate(resolve));
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
