/**
 * Ranker backend on llama.cpp through node-llama-cpp: one context with several sequences, one prompt per
 * sequence at a time, so node-llama-cpp batches the users' tokens together. Each sequence keeps its KV
 * cache between prompts and only evaluates what differs from its previous prompt, so the shared
 * instruction prefix is computed once per sequence.
 *
 * One sampling call at a time per context (`serializeSampling`): node-llama-cpp 3.21.1 reads the logits of
 * every sequence of a decoded batch at once, on libuv worker threads, and its llama.cpp reorders a batch's
 * outputs lazily inside `llama_get_logits_ith` (`output_reorder`, llama.cpp PR 14853), which is not
 * thread-safe. With one KV stream per sequence (node-llama-cpp never unifies the KV cache) llama.cpp splits
 * a batch per sequence (`split_equal`), so the outputs come back out of order whenever the sequences'
 * remaining tokens differ; two threads then both apply the swaps (undoing them) or interleave them, and a
 * sequence receives another sequence's logits or a mix (issue 7 §1: users got other users' scores).
 *
 * With `lettersOnly` (the server), only the letters' probabilities are read: every other token is biased
 * to -inf (one cached TokenBias per letter set; node-llama-cpp cannot bias end-of-generation tokens, so
 * those stay) and a top-k of the letters plus those tokens keeps the sampler's candidate list that short. The softmax over that short list
 * differs from the full-vocabulary one by a per-prompt constant (the verbalizer's log-softmax removes it)
 * and costs ~1 ms instead of sorting and reviving a 32,000-entry probability map (~17 ms CPU per prompt).
 */

import { statSync } from "node:fs";
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token, TokenBias } from "node-llama-cpp";
import { GgufFile } from "../../llm/gguf/reader.js";
import { InputError } from "../../util/errors.js";
import { threadCount } from "../../util/threads.js";
import type { PromptIds, RankerBackend } from "../backend.js";

export interface LlamaCppBackendOptions {
  modelPath: string;
  /** A GGUF LoRA adapter (general.type "adapter"). */
  loraPath?: string;
  loraScale?: number;
  /** Parallel sequences (users in one batch). Default 4. */
  sequences?: number;
  /** Tokens per sequence; must hold the longest prompt. Default 1536 (the paper's prompt budget). */
  contextSize?: number;
  /** Tokens per llama.cpp batch. Default 512. */
  batchSize?: number;
  /** CPU threads. Default: LLAMAREC_THREADS, else min(2, cores) (src/util/threads.ts). */
  threads?: number;
  /** F32 instead of F16 KV cache, for agreement tests against a float32 engine. Default false. */
  kvCacheF32?: boolean;
  /** Default false: flash attention changes summation order. */
  flashAttention?: boolean;
  /**
   * Return the letters' log-probabilities normalised over the letters (and end-of-generation tokens)
   * instead of the full vocabulary: equal up to a per-prompt constant, ~15 ms less CPU per prompt on a
   * 32,000-token vocabulary. Default false.
   */
  lettersOnly?: boolean;
}

export class LlamaCppBackend implements RankerBackend {
  readonly name = "llamacpp";
  private closed = false;
  /** Per letter set: every other token biased to -inf, and the top-k that keeps the letters. */
  private readonly letterOnly = new Map<string, { bias: TokenBias; topK: number }>();

  private constructor(
    private readonly llama: Llama,
    readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly sequences: LlamaContextSequence[],
    /** Vocabulary size for the letters-only scores; 0 = full-vocabulary probabilities. */
    private readonly vocabSize: number,
    private readonly TokenBiasClass: typeof TokenBias,
  ) {}

  static async open(options: LlamaCppBackendOptions): Promise<LlamaCppBackend> {
    // Bad files are input errors with one line, before llama.cpp sees them (it logs and throws generically).
    const vocabSize = checkGguf(options.modelPath, "model");
    if (options.loraPath) checkGguf(options.loraPath, "LoRA adapter");
    const { getLlama, LlamaLogLevel, TokenBias } = await import("node-llama-cpp");
    const threads = threadCount(options.threads);
    // llama.cpp's own error lines go into the error we throw while opening, to stderr afterwards.
    let opening: string[] | null = [];
    const llama = await getLlama({
      gpu: false,
      build: "never",
      maxThreads: threads,
      logLevel: LlamaLogLevel.error,
      logger: (_level, message) => {
        if (opening) opening.push(message.trim());
        else process.stderr.write(`[llama.cpp] ${message.trim()}\n`);
      },
    });
    try {
      let model: LlamaModel;
      try {
        model = await llama.loadModel({ modelPath: options.modelPath });
      } catch (err) {
        const detail = opening.filter((m) => m !== "").at(-1) ?? (err as Error).message;
        throw new InputError(`${options.modelPath}: llama.cpp cannot load this model (${detail})`);
      }
      const nSeq = options.sequences ?? 4;
      const kvType = options.kvCacheF32
        ? { experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" }
        : {};
      const context = await model.createContext({
        sequences: nSeq,
        contextSize: options.contextSize ?? 1536,
        batchSize: options.batchSize ?? 512,
        flashAttention: options.flashAttention ?? false,
        threads,
        ...(kvType as object),
        ...(options.loraPath
          ? { lora: { adapters: [{ filePath: options.loraPath, scale: options.loraScale ?? 1 }] } }
          : {}),
      });
      serializeSampling(context);
      const sequences = Array.from({ length: nSeq }, () => context.getSequence());
      if (options.lettersOnly) for (const seq of sequences) reuseSamplerConfig(seq);
      opening = null;
      return new LlamaCppBackend(
        llama,
        model,
        context,
        sequences,
        options.lettersOnly ? vocabSize : 0,
        TokenBias,
      );
    } catch (err) {
      await llama.dispose();
      throw err;
    }
  }

  async scorePrompts(prompts: readonly PromptIds[]): Promise<Float32Array[]> {
    if (this.closed) throw new Error("llama.cpp backend is closed");
    const results: Float32Array[] = new Array(prompts.length);
    let next = 0;
    const worker = async (seq: LlamaContextSequence) => {
      while (next < prompts.length) {
        const i = next++;
        results[i] = await this.scoreOne(seq, prompts[i]!);
      }
    };
    await Promise.all(this.sequences.map(worker));
    return results;
  }

  private async scoreOne(seq: LlamaContextSequence, prompt: PromptIds): Promise<Float32Array> {
    const ids = prompt.ids;
    if (ids.length === 0) throw new Error("cannot score an empty prompt");
    if (ids.length > seq.contextSize) {
      throw new Error(`prompt of ${ids.length} tokens exceeds the llama.cpp context size ${seq.contextSize}`);
    }
    // Reuse the cached common prefix; always re-evaluate at least the last token to get its logits.
    const cached = seq.contextTokens;
    let keep = 0;
    const limit = Math.min(cached.length, ids.length - 1);
    while (keep < limit && cached[keep] === ids[keep]) keep++;
    if (keep < seq.nextTokenIndex)
      await seq.eraseContextTokenRanges([{ start: keep, end: seq.nextTokenIndex }]);
    const letterOnly = this.lettersOnly(prompt.letterIds);
    const next = letterOnly
      ? {
          probabilities: true,
          options: { temperature: 1, topK: letterOnly.topK, topP: 1, minP: 0, tokenBias: letterOnly.bias },
        }
      : { probabilities: true };
    const input = ids
      .slice(keep)
      .map((t, j, arr) =>
        j === arr.length - 1 ? ([t as Token, { generateNext: next }] as const) : (t as Token),
      );
    const out = await seq.controlledEvaluate(
      input as Parameters<LlamaContextSequence["controlledEvaluate"]>[0],
    );
    const probabilities = out[input.length - 1]?.next.probabilities;
    if (!probabilities) throw new Error("llama.cpp returned no next-token probabilities");
    // Softmax over the letters (and end-of-generation tokens); a letter missing from the map underflowed to 0.
    return Float32Array.from(prompt.letterIds, (id) => {
      const p = probabilities.get(id as Token);
      return p && p > 0 ? Math.log(p) : Number.NEGATIVE_INFINITY;
    });
  }

  private lettersOnly(letterIds: readonly number[]): { bias: TokenBias; topK: number } | null {
    if (this.vocabSize === 0) return null;
    const key = letterIds.join(",");
    let entry = this.letterOnly.get(key);
    if (!entry) {
      const letters = new Set(letterIds);
      const others: Token[] = [];
      let unbiasable = 0; // end-of-generation tokens: TokenBias.set ignores them
      for (let t = 0; t < this.vocabSize; t++) {
        if (letters.has(t)) continue;
        others.push(t as Token);
        if (this.model.isEogToken(t as Token)) unbiasable++;
      }
      const bias = new this.TokenBiasClass(this.model.tokenizer).set(others, "never");
      entry = { bias, topK: letters.size + unbiasable };
      this.letterOnly.set(key, entry);
    }
    return entry;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}

/**
 * Exists, is a file, and has a complete GGUF header and tensor table (our reader checks the sizes).
 * Returns the size of its vocabulary (0 without tokenizer.ggml.tokens, e.g. an adapter).
 */
function checkGguf(path: string, what: string): number {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch {
    throw new InputError(`${what} ${path}: no such file`);
  }
  if (!isFile) throw new InputError(`${what} ${path} is not a file (a .gguf file is needed)`);
  const file = GgufFile.open(path);
  const tokens = file.metadata.get("tokenizer.ggml.tokens")?.value;
  file.close();
  return Array.isArray(tokens) ? tokens.length : 0;
}

type ResolveSamplerConfig = (options: { tokenBias?: unknown }) => object;

/**
 * node-llama-cpp turns a TokenBias into two typed arrays on every sampling call (~2 ms for the ~32,000
 * entries of a letters-only bias); the letters-only bias objects are fixed, and so are the other sampling
 * options this backend passes with each of them, so the resolved configuration is kept per bias object.
 * Relies on node-llama-cpp internals (3.21.1); when they differ, sampling simply stays uncached.
 */
function reuseSamplerConfig(seq: LlamaContextSequence): void {
  const target = seq as unknown as { _resolveSamplerConfig?: ResolveSamplerConfig };
  const resolve = target._resolveSamplerConfig;
  if (typeof resolve !== "function") return;
  const cache = new WeakMap<object, object>();
  const cached: ResolveSamplerConfig = function (this: unknown, options) {
    const bias = options.tokenBias;
    if (typeof bias !== "object" || bias === null) return resolve.call(this, options);
    let config = cache.get(bias);
    if (!config) {
      config = resolve.call(this, options);
      cache.set(bias, config);
    }
    return { ...config };
  };
  Object.defineProperty(seq, "_resolveSamplerConfig", { value: cached, configurable: true });
}

type SampleToken = (...args: unknown[]) => Promise<unknown>;

/**
 * Makes the context's native `sampleToken` (the only path from a decoded batch to its logits) run one call
 * at a time, so llama.cpp's lazy output reorder happens once, on one thread, before anything reads. Every
 * sampling of this context goes through this function object, whichever sequence asks. Relies on
 * node-llama-cpp internals (pinned at 3.21.1): fails loudly if they change rather than rank wrongly.
 */
export function serializeSampling(context: LlamaContext): void {
  const native = (context as unknown as { _ctx?: { sampleToken?: SampleToken } })._ctx;
  if (!native || typeof native.sampleToken !== "function") {
    throw new Error(
      "node-llama-cpp internals changed (LlamaContext._ctx.sampleToken not found): cannot make parallel sequences safe; see src/ranker/backends/llamacpp.ts",
    );
  }
  const sample = native.sampleToken.bind(native);
  let tail: Promise<unknown> = Promise.resolve();
  const serialized: SampleToken = (...args) => {
    const run = tail.then(() => sample(...args));
    tail = run.catch(() => undefined);
    return run;
  };
  // The native method is a read-only prototype property; an own property on this instance shadows it.
  Object.defineProperty(native, "sampleToken", { value: serialized, configurable: true });
}
