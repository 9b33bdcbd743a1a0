/**
 * `llamarec rank`: rank a run's retriever candidates with an LLM ranker on any backend (our engine,
 * llama.cpp, or an OpenAI-compatible server) and write ranker/ranked.jsonl + ranker/metrics.json.
 * Model and adapter default to what `llamarec train ranker` wrote into the run.
 */

import type { BackendKind } from "../../ranker/backends/open.js";
import { summarizeRankMetrics } from "../../ranker/rank.js";
import { rankRun } from "../../ranker/rank-run.js";
import { loadRunDataset, resolveRunDir } from "../../run/index.js";
import { consoleEvents } from "../../util/console-events.js";
import { InputError } from "../../util/errors.js";
import { parseIntArg, parsePositiveIntArg } from "../options.js";
import type { CommandSpec } from "../registry.js";

const BACKENDS: readonly BackendKind[] = ["engine", "llamacpp", "remote"];

export const rankCommand: CommandSpec = {
  path: ["rank"],
  summary: "rank a run's candidates with the LLM ranker (engine, llama.cpp or a remote server)",
  description:
    "Scores the letters A–T after each validation/test prompt (users whose label the retriever put in " +
    "its top-20, or --all-users) and writes ranker/ranked.jsonl and ranker/metrics.json: NDCG/Recall/MRR " +
    "@1,5,10 of the ranker and of the retriever's order on the same users, and overall. --orders N " +
    "averages letter log-probs over N candidate orders (position-bias control, N× the cost). Remote: " +
    "POST <url>/v1/completions with max_tokens 1 and logprobs 20 (vLLM, llama.cpp server); LLAMAREC_API_KEY is sent as a bearer token.",
  configure(cmd) {
    cmd
      .requiredOption("--run <run>", "run folder (name under --runs-dir, or path)")
      .option("--runs-dir <folder>", "where run folders are (default runs)", "runs")
      .option("--backend <kind>", `${BACKENDS.join(" | ")} (default engine)`, "engine")
      .option("--model <model>", "model .gguf / HF folder (default: the run's trained ranker)")
      .option(
        "--adapter <path>",
        "LoRA adapter: PEFT folder or .gguf (default: the run's; 'none' for the base)",
      )
      .option("--tokenizer <source>", "tokenizer .gguf / HF folder (default: the model's)")
      .option("--url <url>", "remote: server root, e.g. http://127.0.0.1:8000")
      .option("--served-model <name>", 'remote: the "model" field (vLLM\'s served model name)')
      .option("--token-ids", "remote (vLLM): ask for token-id keys in the logprobs (exact letter matching)")
      .option(
        "--letter-bias <n>",
        "remote: the same logit bias on every letter so all 20 come back (llama-server; vLLM with --logprobs-mode processed_logprobs)",
        parseIntArg,
      )
      .option(
        "--top-logprobs <n>",
        "remote: log-probabilities requested per prompt (default 20)",
        parsePositiveIntArg,
      )
      .option("--concurrency <n>", "remote: requests in flight (default 4)", parsePositiveIntArg)
      .option("--timeout-ms <n>", "remote: per-request timeout (default 60000)", parsePositiveIntArg)
      .option("--orders <n>", "candidate orders averaged per user (default 1)", parsePositiveIntArg)
      .option("--seed <n>", "seed of the extra orders (default 0)", parseIntArg)
      .option("--split <split>", "val, test or both (default both)", "both")
      .option("--all-users", "also rank users whose label is not among the candidates")
      .option(
        "--letter-mode <mode>",
        "letter token ids: answer-position (as the model is trained to answer) or isolated (the official code's)",
      )
      .option(
        "--threads <n>",
        "llama.cpp threads (default: LLAMAREC_THREADS, else min(2, cores))",
        parsePositiveIntArg,
      );
  },
  async run(ctx) {
    const o = ctx.opts;
    const backend = o.backend as BackendKind;
    if (!BACKENDS.includes(backend))
      throw new InputError(`--backend must be one of ${BACKENDS.join(", ")}, got "${backend}"`);
    const split = o.split as string;
    if (!["val", "test", "both"].includes(split))
      throw new InputError(`--split must be val, test or both, got "${split}"`);
    const letterMode = o.letterMode as string | undefined;
    if (letterMode !== undefined && letterMode !== "answer-position" && letterMode !== "isolated")
      throw new InputError(`--letter-mode must be answer-position or isolated, got "${letterMode}"`);
    const runDir = resolveRunDir(o.run as string, o.runsDir as string);
    const { dataset } = await loadRunDataset(runDir);
    const result = await rankRun({
      runDir,
      dataset,
      backend,
      ...(o.model ? { model: o.model as string } : {}),
      ...(o.adapter ? { adapter: o.adapter as string } : {}),
      ...(o.tokenizer ? { tokenizer: o.tokenizer as string } : {}),
      ...(backend === "remote"
        ? {
            remote: {
              url: (o.url as string | undefined) ?? "",
              ...(o.servedModel ? { model: o.servedModel as string } : {}),
              ...(process.env.LLAMAREC_API_KEY ? { apiKey: process.env.LLAMAREC_API_KEY } : {}),
              ...(o.tokenIds ? { returnTokenIds: true } : {}),
              ...(o.letterBias !== undefined ? { letterBias: o.letterBias as number } : {}),
              ...(o.topLogprobs ? { topLogprobs: o.topLogprobs as number } : {}),
              ...(o.concurrency ? { concurrency: o.concurrency as number } : {}),
              ...(o.timeoutMs ? { timeoutMs: o.timeoutMs as number } : {}),
            },
          }
        : {}),
      ...(letterMode ? { prompt: { letterMode } } : {}),
      ...(o.orders !== undefined ? { orders: o.orders as number } : {}),
      ...(o.seed !== undefined ? { seed: o.seed as number } : {}),
      ...(o.threads !== undefined ? { threads: o.threads as number } : {}),
      allUsers: o.allUsers === true,
      splits: split === "both" ? ["val", "test"] : [split as "val" | "test"],
      events: consoleEvents(),
    });
    const lines = [
      `ranked ${result.ranked.length} users (${result.prompts} prompts) in ${result.seconds.toFixed(1)}s`,
      ...summarizeRankMetrics(result.metrics),
      `wrote ${runDir}/ranker/ranked.jsonl and ranker/metrics.json`,
    ];
    ctx.out.write(`${lines.join("\n")}\n`);
  },
};
