/**
 * `llamarec train ranker`: fine-tune the LLM ranker on a run's retriever candidates (LlamaRec stage 2),
 * then rank validation and test with it. Writes runs/<name>/ranker/ (see ranker-run.ts).
 */
import { LLAMAREC_LORA } from "../../llm/lora/config.js";
import { summarizeRankMetrics } from "../../ranker/rank.js";
import { type RankerPromptSettings, readRankerRunConfig } from "../../ranker/run-config.js";
import { rankerSection } from "../../ranker/training/config-section.js";
import { trainRankerRun } from "../../ranker/training/ranker-run.js";
import type { RankerTrainConfig } from "../../ranker/training/trainer.js";
import { loadRunDataset, resolveRunDir } from "../../run/index.js";
import { consoleEvents } from "../../util/console-events.js";
import { InputError } from "../../util/errors.js";
import { log } from "../../util/log.js";
import { parseIntArg, parseNumberArg } from "../options.js";
import type { CommandSpec } from "../registry.js";

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export const trainRankerCommand: CommandSpec = {
  path: ["train", "ranker"],
  summary: "fine-tune the LLM ranker (LoRA, or a scratch model) on a run's retriever candidates",
  description:
    "Official LlamaRec recipe: every training prefix with 19 random negatives, letters A–T, loss on the " +
    "answer letter + EOS; LoRA r 8 / alpha 32 / dropout 0.05 on q_proj,v_proj; AdamW lr 1e-4, 100 warmup " +
    "steps, linear decay, batch 16, 1 epoch; validation NDCG@10 every 100 steps, best adapter kept. " +
    "scratch:<size> trains a small Llama fully from scratch (vocabulary from --tokenizer). Then ranks " +
    "validation and test and writes ranker/metrics.json. --export-jsonl writes {prompt, completion} lines for GPU trainers.",
  configure(cmd) {
    cmd
      .requiredOption(
        "--candidates <run>",
        "run folder (name under --runs-dir, or path) with retriever/candidates.jsonl",
      )
      .option("--runs-dir <folder>", "where run folders are (default runs)", "runs")
      .option("--model <model>", "base model: a .gguf file, a Hugging Face folder, or scratch:tiny|small")
      .option("--tokenizer <source>", "tokenizer .gguf / HF folder (required for scratch models)")
      .option("--mode <mode>", "lora (default) or full (default for scratch models)")
      .option("--lora-r <n>", "LoRA rank (official 8)", parseIntArg)
      .option("--lora-alpha <x>", "LoRA alpha (official 32)", parseNumberArg)
      .option("--lora-dropout <p>", "LoRA dropout (official 0.05)", parseNumberArg)
      .option("--lr <x>", "peak learning rate (official 1e-4)", parseNumberArg)
      .option("--warmup-steps <n>", "linear warmup steps (official 100)", parseIntArg)
      .option("--batch-size <n>", "examples per optimizer step (official 16 ML-100k, 12 others)", parseIntArg)
      .option("--micro-batch-size <n>", "examples per loss group; accumulation = batch / micro", parseIntArg)
      .option("--epochs <n>", "epochs over all training prefixes (official 1)", parseIntArg)
      .option("--steps <n>", "stop after n optimizer steps (the lr schedule ends there)", parseIntArg)
      .option("--val-every <n>", "validate every n steps (official 100)", parseIntArg)
      .option("--val-users <n>", "validate on n random validation users (default all)", parseIntArg)
      .option(
        "--patience <n>",
        "early stopping after n validations without improvement (official 20)",
        parseIntArg,
      )
      .option("--seed <n>", "seed of negatives, order, LoRA init (default 42)", parseIntArg)
      .option("--max-history <n>", "history items in the prompt (official 20)", parseIntArg)
      .option("--max-prompt-tokens <n>", "prompt token budget (official 1536)", parseIntArg)
      .option(
        "--resume",
        "continue from ranker/checkpoint with the run's recorded model, tokenizer and settings (flags need not be repeated)",
      )
      .option("--force", "replace the ranker this run already has (deletes its weights and rankings)")
      .option("--no-rank", "do not rank validation/test after training")
      .option(
        "--export-jsonl <folder>",
        "also write train/val/test {prompt, completion} JSONL to this folder",
      )
      .option("--export-only", "only write the JSONL sets (with --export-jsonl), no training");
  },
  configFlags: {
    model: "ranker.model",
    tokenizer: "ranker.tokenizer",
    mode: "ranker.mode",
    loraR: "ranker.loraR",
    loraAlpha: "ranker.loraAlpha",
    loraDropout: "ranker.loraDropout",
    lr: "ranker.lr",
    warmupSteps: "ranker.warmupSteps",
    batchSize: "ranker.batchSize",
    microBatchSize: "ranker.microBatchSize",
    epochs: "ranker.epochs",
    steps: "ranker.steps",
    valEvery: "ranker.valEvery",
    valUsers: "ranker.valUsers",
    patience: "ranker.patience",
    seed: "ranker.seed",
    maxHistory: "ranker.maxHistory",
    maxPromptTokens: "ranker.maxPromptTokens",
  },
  async run(ctx) {
    const r = rankerSection.get(ctx.config);
    if (ctx.opts.exportOnly && !ctx.opts.exportJsonl)
      throw new InputError("--export-only needs --export-jsonl <folder>");
    const runDir = resolveRunDir(ctx.opts.candidates as string, ctx.opts.runsDir as string);
    const resume = ctx.opts.resume === true;
    if (resume && ctx.opts.force) throw new InputError("--resume and --force exclude each other");
    // --resume continues the recorded ranker: its model, tokenizer, training and prompt settings are read
    // from ranker/config.json; flags given again must agree with them (trainRankerRun checks).
    const recorded = resume ? readRankerRunConfig(runDir) : null;
    if (resume && !recorded)
      throw new InputError(
        `--resume: ${runDir} has no ranker to continue (no ranker/config.json); train it without --resume`,
      );
    const model = r.model ?? recorded?.model;
    if (!model) throw new InputError("--model is required (a .gguf file, an HF folder or scratch:<size>)");
    const tokenizer = r.tokenizer ?? recorded?.tokenizer ?? undefined;
    const { dataset } = await loadRunDataset(runDir);
    const batchSize = r.batchSize;
    const training: Partial<RankerTrainConfig> = {
      ...recorded?.training,
      ...definedOnly({
        mode: r.mode,
        lr: r.lr,
        warmupSteps: r.warmupSteps,
        weightDecay: r.weightDecay,
        maxGradNorm: r.maxGradNorm,
        batchSize,
        // A batch size alone means one micro-batch per step unless told otherwise.
        microBatchSize: r.microBatchSize ?? batchSize,
        epochs: r.epochs,
        maxSteps: r.steps,
        valEvery: r.valEvery,
        valUsers: r.valUsers,
        patience: r.patience,
        logEvery: r.logEvery,
        seed: r.seed,
      }),
    };
    if (r.loraR !== undefined || r.loraAlpha !== undefined || r.loraDropout !== undefined || r.loraTargets) {
      training.lora = {
        r: r.loraR ?? LLAMAREC_LORA.r,
        alpha: r.loraAlpha ?? LLAMAREC_LORA.alpha,
        dropout: r.loraDropout ?? LLAMAREC_LORA.dropout,
        targetModules: r.loraTargets ?? LLAMAREC_LORA.targetModules,
      };
    }
    const prompt: Partial<RankerPromptSettings> = {
      ...recorded?.prompt,
      ...definedOnly({
        numCandidates: r.numCandidates,
        maxHistory: r.maxHistory,
        maxTitleTokens: r.maxTitleTokens,
        maxPromptTokens: r.maxPromptTokens,
        letterMode: r.letterMode,
      }),
    };
    log.info(`run folder: ${runDir}`);
    const result = await trainRankerRun({
      runDir,
      dataset,
      model,
      ...(tokenizer ? { tokenizer } : {}),
      training,
      prompt,
      resume,
      force: ctx.opts.force === true,
      ...(ctx.opts.exportJsonl ? { exportJsonl: ctx.opts.exportJsonl as string } : {}),
      exportOnly: ctx.opts.exportOnly === true,
      rank: ctx.opts.rank !== false,
      events: consoleEvents(),
    });
    const lines: string[] = [];
    if (result.exported) {
      lines.push(`exported: ${result.exported.files.join(", ")}`);
    }
    const s = result.summary;
    if (s) {
      lines.push(
        `trained ${s.steps}/${s.totalSteps} steps (${s.examplesSeen} examples) in ${s.seconds}s${s.stoppedEarly ? ", early stop" : ""}; ` +
          `${s.trainableParameters} trainable of ${s.totalParameters} parameters`,
        `best validation NDCG@10 ${s.bestMetric?.toFixed(4) ?? "-"} at step ${s.bestStep ?? "-"}`,
        ...Object.entries(s.artifacts).map(([k, v]) => `${k}: ${v}`),
      );
    }
    if (result.rank) lines.push(...summarizeRankMetrics(result.rank.metrics));
    ctx.out.write(`${lines.join("\n")}\n`);
  },
};
