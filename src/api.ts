/**
 * The library's task-level helpers: what a TypeScript user does with LlamaRec in a few calls — load a trained
 * retriever, get the top-k candidates for one history, rank candidates with an LLM backend. Each one is a
 * thin composition of the layers below (retrievers, ranker, run folder); `src/index.ts` exports them with
 * those layers' own building blocks.
 */
import type { Dataset } from "./data/dataset.js";
import { DEFAULT_NUM_CANDIDATES } from "./eval/index.js";
import type { RankerBackend } from "./ranker/backend.js";
import { type BackendKind, openRankerBackend } from "./ranker/backends/open.js";
import type { RemoteBackendOptions } from "./ranker/backends/remote.js";
import { PromptBuilder, type PromptConfig } from "./ranker/prompt.js";
import { orderByScore, scoreInstances } from "./ranker/rank.js";
import { resolveRankerWeights } from "./ranker/run-config.js";
import { tokenizerFrom } from "./ranker/training/model-source.js";
import { type LetterIdMode, Verbalizer } from "./ranker/verbalizer.js";
import { encodeEvaluationRow } from "./retrievers/batches.js";
import { topItems } from "./retrievers/evaluate.js";
import { loadModel } from "./retrievers/model-file.js";
import type { SequentialRetriever } from "./retrievers/types.js";
import { readRunConfig, runPaths } from "./run/index.js";
import { InputError } from "./util/errors.js";

/** A trained retriever and the input length it was trained with. */
export interface LoadedRetriever {
  model: SequentialRetriever;
  /** Items of history the model reads (the training `maxLen`; older items are dropped). */
  maxLen: number;
}

/** The best weights of a run folder's retriever (`retriever/model.safetensors` + `model.json`). */
export async function loadRetriever(runDir: string): Promise<LoadedRetriever> {
  const paths = runPaths(runDir).retriever;
  const config = await readRunConfig(runDir);
  const model = await loadModel(paths.model, paths.modelJson);
  const maxLen = Number(config.retriever?.training.maxLen ?? 200);
  if (!Number.isInteger(maxLen) || maxLen < 1) {
    throw new InputError(
      `${runPaths(runDir).config}: field "retriever.training.maxLen" must be a positive integer`,
    );
  }
  return { model, maxLen };
}

export interface CandidateOptions {
  /** How many items (default 20, the paper's candidates). */
  k?: number;
  /** Items never returned. Default: the history itself (as the evaluation's "full" exclusion). */
  exclude?: Iterable<number>;
}

/** Items best first with their retriever scores. */
export interface ScoredItems {
  items: number[];
  scores: number[];
}

/**
 * The retriever's top-k items to follow `history` (dense item ids 1…numItems, oldest first), history items
 * excluded; ties: smaller item id first — the same candidates `llamarec train retriever` writes.
 */
export function retrieveCandidates(
  retriever: LoadedRetriever,
  history: readonly number[],
  options: CandidateOptions = {},
): ScoredItems {
  const { model, maxLen } = retriever;
  for (const item of history) {
    if (!Number.isInteger(item) || item < 1 || item > model.numItems) {
      throw new InputError(`history item ${item} is not an item id 1..${model.numItems}`);
    }
  }
  const tokens = new Int32Array(maxLen);
  encodeEvaluationRow(history, maxLen, tokens, 0);
  const scores = model.scoreNext(tokens, 1, maxLen);
  return topItems(scores, options.k ?? DEFAULT_NUM_CANDIDATES, new Set(options.exclude ?? history));
}

export interface OpenRankerOptions {
  /** engine (our TypeScript Llama), llamacpp (node-llama-cpp) or remote (OpenAI-compatible server). */
  backend?: BackendKind;
  /** Model: a .gguf file (engine, llamacpp) or a Hugging Face folder (engine). */
  model: string;
  /** LoRA adapter: PEFT folder or .gguf (engine), .gguf (llamacpp). */
  adapter?: string | null;
  /** Where the tokenizer comes from (default: the model). Remote: required unless `model` is a local file. */
  tokenizer?: string;
  /** Prompt settings (default: the paper's: 20 history titles, 32 tokens a title, 1536 tokens a prompt). */
  prompt?: Partial<Pick<PromptConfig, "maxHistory" | "maxTitleTokens" | "maxPromptTokens">>;
  /** Candidates a prompt can hold (letters A…; default 20). */
  numCandidates?: number;
  letterMode?: LetterIdMode;
  /** llama.cpp CPU threads (default 2). */
  threads?: number;
  remote?: Omit<RemoteBackendOptions, "decode">;
}

/** An LLM ranker: one prompt per history, the letters' scores reorder the candidates. */
export interface Ranker {
  readonly backend: RankerBackend;
  readonly prompts: PromptBuilder;
  readonly verbalizer: Verbalizer;
  /**
   * `candidates` in the LLM's order, best first, with each one's letter log-probability. `history` is
   * oldest first; the prompt shows its last `maxHistory` titles.
   */
  rank(dataset: Dataset, history: readonly number[], candidates: readonly number[]): Promise<ScoredItems>;
  close(): Promise<void>;
}

class PromptRanker implements Ranker {
  constructor(
    readonly backend: RankerBackend,
    readonly prompts: PromptBuilder,
    readonly verbalizer: Verbalizer,
  ) {}

  async rank(
    dataset: Dataset,
    history: readonly number[],
    candidates: readonly number[],
  ): Promise<ScoredItems> {
    if (candidates.length === 0) return { items: [], scores: [] };
    const [scores] = await scoreInstances(
      [
        {
          split: "test",
          user: 0,
          history: history.slice(-this.prompts.config.maxHistory),
          candidates: [...candidates],
          answerIndex: -1,
        },
      ],
      { dataset, backend: this.backend, prompts: this.prompts, verbalizer: this.verbalizer },
    );
    const order = orderByScore(scores!);
    return { items: order.map((i) => candidates[i]!), scores: order.map((i) => scores![i]!) };
  }

  close(): Promise<void> {
    return this.backend.close();
  }
}

/** Opens a ranker on a model file (and adapter) with the paper's prompt. Close it when done. */
export async function openRanker(options: OpenRankerOptions): Promise<Ranker> {
  const kind = options.backend ?? "engine";
  const { tokenizer } = tokenizerFrom(options.tokenizer ?? options.model);
  const prompts = new PromptBuilder(tokenizer, options.prompt ?? {});
  const verbalizer = Verbalizer.forPrompt(prompts, {
    count: options.numCandidates ?? DEFAULT_NUM_CANDIDATES,
    mode: options.letterMode ?? "answer-position",
  });
  const backend = await openRankerBackend(kind, {
    model: options.model,
    adapter: options.adapter ?? null,
    ...(options.threads === undefined ? {} : { threads: options.threads }),
    ...(options.remote ? { remote: options.remote } : {}),
    decode: (ids) => tokenizer.decode(ids),
  });
  return new PromptRanker(backend, prompts, verbalizer);
}

/** The ranker a run folder trained (its model or adapter and its prompt settings), on any backend. */
export async function openRunRanker(
  runDir: string,
  options: Omit<OpenRankerOptions, "model" | "adapter" | "prompt" | "numCandidates" | "letterMode"> & {
    model?: string;
    adapter?: string;
  } = {},
): Promise<Ranker> {
  const kind = options.backend ?? "engine";
  const w = resolveRankerWeights(runDir, kind, options.model, options.adapter);
  return openRanker({
    ...options,
    backend: kind,
    model: w.model,
    adapter: w.adapter,
    ...((options.tokenizer ?? w.tokenizer) ? { tokenizer: options.tokenizer ?? w.tokenizer! } : {}),
    prompt: {
      maxHistory: w.prompt.maxHistory,
      maxTitleTokens: w.prompt.maxTitleTokens,
      maxPromptTokens: w.prompt.maxPromptTokens,
    },
    numCandidates: w.prompt.numCandidates,
    letterMode: w.prompt.letterMode,
  });
}
