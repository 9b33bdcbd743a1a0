/**
 * Ranking a run's candidates with its trained ranker on any backend: reads the candidates and the ranker's
 * recorded prompt settings, opens the backend (openRankerBackend), ranks validation and test
 * (rankCandidates) and writes ranker/ranked.jsonl + ranker/metrics.json.
 */
import type { Dataset } from "../data/dataset.js";
import { runPaths } from "../run/index.js";
import { type Events, NO_EVENTS, type ProgressHandle, startProgress } from "../util/events.js";
import { type BackendKind, openRankerBackend } from "./backends/open.js";
import type { RemoteBackendOptions } from "./backends/remote.js";
import { type RankResult, rankCandidates, writeRankOutputs } from "./rank.js";
import {
  promptTools,
  type RankerPromptSettings,
  resolveRankerWeights,
  runCandidates,
  verifyRankerModel,
} from "./run-config.js";
import { tokenizerFrom } from "./training/model-source.js";

export interface RankRunOptions {
  runDir: string;
  dataset: Dataset;
  backend: BackendKind;
  /** Default: from ranker/config.json (the base model, or ranker/model.gguf of a full-trained run). */
  model?: string;
  /** LoRA adapter (PEFT folder or .gguf); default: the run's trained adapter if any. "none" disables. */
  adapter?: string;
  tokenizer?: string;
  remote?: Omit<RemoteBackendOptions, "decode">;
  orders?: number;
  seed?: number;
  allUsers?: boolean;
  splits?: readonly ("val" | "test")[];
  prompt?: Partial<RankerPromptSettings>;
  /** llama.cpp threads (default: LLAMAREC_THREADS, else min(2, cores); src/util/threads.ts). */
  threads?: number;
  /** Where logs and progress (prompts ranked, rate, ETA) are reported. */
  events?: Events;
}

export async function rankRun(o: RankRunOptions): Promise<RankResult> {
  const events = o.events ?? NO_EVENTS;
  const records = await runCandidates(o.runDir, o.dataset);
  const w = resolveRankerWeights(o.runDir, o.backend, o.model, o.adapter);
  await verifyRankerModel(o.runDir, w.model);
  const prompt = { ...w.prompt, ...o.prompt };
  // Prompts need only the tokenizer: read it from the model file (or --tokenizer), not the weights.
  const { tokenizer } = tokenizerFrom(o.tokenizer ?? w.tokenizer ?? w.model);
  const tools = promptTools({ tokenizer }, prompt);
  const backend = await openRankerBackend(o.backend, {
    model: w.model,
    adapter: w.adapter,
    ...(o.threads === undefined ? {} : { threads: o.threads }),
    ...(o.remote ? { remote: o.remote } : {}),
    decode: (ids) => tokenizer.decode(ids),
  });
  events.log(
    "info",
    `ranking with ${backend.name}: model ${w.model}${w.adapter ? `, adapter ${w.adapter}` : ""}`,
  );
  const progress: { bar: ProgressHandle | null; done: number } = { bar: null, done: 0 };
  try {
    const result = await rankCandidates({
      dataset: o.dataset,
      records,
      backend,
      ...tools,
      numCandidates: prompt.numCandidates,
      maxHistory: prompt.maxHistory,
      ...(o.orders === undefined ? {} : { orders: o.orders }),
      ...(o.seed === undefined ? {} : { seed: o.seed }),
      ...(o.allUsers ? { allUsers: true } : {}),
      ...(o.splits ? { splits: o.splits } : {}),
      onProgress: (done, total) => {
        progress.bar ??= startProgress(events, `ranking with ${backend.name}`, total);
        progress.bar.tick(done - progress.done);
        progress.done = done;
      },
    });
    progress.bar?.done();
    const paths = await writeRankOutputs(runPaths(o.runDir).ranker.dir, result, {
      backend: backend.name,
      model: w.model,
      adapter: w.adapter,
      orders: o.orders ?? 1,
    });
    events.artifact("ranker.ranked", paths.ranked);
    events.artifact("ranker.metrics", paths.metrics);
    return result;
  } finally {
    await backend.close();
  }
}
