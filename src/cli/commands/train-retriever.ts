/**
 * `llamarec train retriever`: train a sequential retriever into a run folder (weights, training log,
 * metrics, candidates for the ranker). `--resume` continues a killed run from its last checkpoint and
 * loads the dataset the run recorded, so only `--run` is needed.
 */
import { existsSync } from "node:fs";
import { dataSection, evalSection } from "../../config/core.js";
import type { Dataset } from "../../data/dataset.js";
import { loadDataset } from "../../data/index.js";
import { modelOptionFlags, retrieverSection, trainingOverrides } from "../../retrievers/config-section.js";
import { retrieverEntry, retrieverNames } from "../../retrievers/registry.js";
import { trainRetriever } from "../../retrievers/trainer.js";
import { defaultRunName, loadRunDataset, readRunConfig, resolveRunDir, runPaths } from "../../run/index.js";
import { consoleEvents } from "../../util/console-events.js";
import { InputError } from "../../util/errors.js";
import { log } from "../../util/log.js";
import { addDataOptions, DATA_CONFIG_FLAGS, datasetSpecFrom, loadOptionsFrom } from "../data-options.js";
import { parseIntArg, parseNumberArg } from "../options.js";
import type { CommandContext, CommandSpec } from "../registry.js";

export const trainRetrieverCommand: CommandSpec = {
  path: ["train", "retriever"],
  summary:
    "train a retriever (LRURec, SASRec, BERT4Rec, NARM, pop) and write its metrics and top-20 candidates to a run folder",
  description:
    "Trains with the official LlamaRec schedule (AdamW lr 1e-3, weight decay 0.01, grad-norm clip 5, " +
    "validation Recall@10 every 500 iterations, early stopping after 20 without improvement; MovieLens: " +
    "length 200, batch 16). Writes runs/<name>/{config.json, retriever/...}; a checkpoint at every " +
    "validation lets --resume continue after a kill with the same result. Kernels: LLAMAREC_KERNELS=wasm|reference.",
  configure(cmd) {
    addDataOptions(cmd)
      .option("--model <name>", `retriever model: ${retrieverNames().join(", ")} (default lru)`)
      .option(
        "--run <name>",
        "run folder name under --runs-dir, or a path (default <model>-<dataset>-<time>)",
      )
      .option("--runs-dir <folder>", "where run folders go (default runs)")
      .option("--resume", "continue the run named by --run from its last checkpoint")
      .option("--dropout <p>", "model dropout (official 0.2)", parseNumberArg)
      .option("--seed <n>", "seed of initialisation, dropout and shuffling (default 42)", parseIntArg)
      .option(
        "--max-iterations <n>",
        "stop after n optimizer steps (default: early stopping only)",
        parseIntArg,
      )
      .option("--max-epochs <n>", "stop after n epochs (official 500)", parseIntArg)
      .option("--val-every <n>", "validate every n iterations (official 500)", parseIntArg)
      .option(
        "--patience <n>",
        "early stopping after n validations without improvement (official 20)",
        parseIntArg,
      )
      .option("--batch-size <n>", "training batch size (official: 16 MovieLens, 64 others)", parseIntArg)
      .option("--max-len <n>", "sequence length (official: 200 MovieLens, 50 others)", parseIntArg)
      .option("--lr <x>", "learning rate (official 1e-3)", parseNumberArg)
      .option("--weight-decay <x>", "AdamW weight decay (official 0.01)", parseNumberArg)
      .option(
        "--val-exclude <mode>",
        "history removed from the validation ranking during training: full, input or none (default: as the test, eval.exclude; the official trainer: none)",
      );
    // Each model's own options, derived from its schema (retriever.options.<key> in a config file).
    for (const o of modelOptionFlags()) {
      if (o.kind === "number") cmd.option(o.flag, o.description, parseNumberArg);
      else cmd.option(o.flag, o.description);
    }
  },
  configFlags: {
    ...DATA_CONFIG_FLAGS,
    model: "retriever.model",
    run: "retriever.run",
    runsDir: "retriever.runsDir",
    dropout: "retriever.dropout",
    seed: "retriever.seed",
    maxIterations: "retriever.maxIterations",
    maxEpochs: "retriever.maxEpochs",
    valEvery: "retriever.valEvery",
    patience: "retriever.patience",
    batchSize: "retriever.batchSize",
    maxLen: "retriever.maxLen",
    lr: "retriever.lr",
    weightDecay: "retriever.weightDecay",
    valExclude: "retriever.valExclude",
    ...Object.fromEntries(modelOptionFlags().map((o) => [o.key, o.configPath])),
  },
  async run(ctx) {
    const r = retrieverSection.get(ctx.config);
    const ev = evalSection.get(ctx.config);
    const resume = ctx.opts.resume === true;
    if (resume && r.run === undefined)
      throw new InputError("--resume needs --run <name> (the run to continue)");
    if (!resume || ctx.opts.model !== undefined) retrieverEntry(r.model); // an unknown name fails before loading data

    let runDir: string;
    let model = r.model;
    let dataset: Dataset;
    if (resume) {
      runDir = resolveRunDir(r.run!, r.runsDir);
      if (!existsSync(runPaths(runDir).config))
        throw new InputError(
          `--resume: there is no run at ${runDir} (no config.json); check --run/--runs-dir, or start it without --resume`,
        );
      ({ dataset } = await loadRunDataset(runDir));
      // Without --model, the run's own model (config.json is authoritative), not the default lru.
      if (ctx.opts.model === undefined) model = (await readRunConfig(runDir)).retriever?.model ?? model;
    } else {
      dataset = await loadConfiguredDataset(ctx);
      runDir = resolveRunDir(r.run ?? defaultRunName(r.model, dataset.name), r.runsDir);
    }

    const training = trainingOverrides(r);
    // The eval section's policy applies to a new run; a resumed run keeps the one it was started with.
    if (!resume)
      Object.assign(training, {
        metricKs: ev.ks,
        tie: ev.tie,
        exclude: ev.exclude,
        candidateCount: ev.numCandidates,
      });
    log.info(`run folder: ${runDir}`);
    // A kill at any moment is safe (atomic checkpoints); on Ctrl-C, say how to continue.
    const onInterrupt = () => {
      process.stderr.write(
        `\ninterrupted; continue from the last checkpoint with: llamarec train retriever --run ${runDir} --resume\n`,
      );
      process.exit(130);
    };
    process.once("SIGINT", onInterrupt);
    const result = await trainRetriever({
      events: consoleEvents(),
      dataset,
      model,
      modelOptions: { ...r.options, ...(r.dropout === undefined ? {} : { dropout: r.dropout }) },
      training,
      runDir,
      resume,
    }).finally(() => process.off("SIGINT", onInterrupt));
    const m = result.evaluation;
    const fmt = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(4));
    const lines = [
      `run: ${result.runDir}`,
      `stopped: ${result.stoppedBy} after ${result.iterations} iterations (${result.iterationsPerSecond.toFixed(2)} it/s this session)`,
      `best validation at iteration ${result.bestIteration}`,
      "",
      "split  users  Recall@5 Recall@10 Recall@20  NDCG@5  NDCG@10  NDCG@20  MRR@10",
    ];
    for (const [name, s] of [
      ["val", m.val],
      ["test", m.test],
    ] as const) {
      const k = s.metrics;
      lines.push(
        `${name.padEnd(5)} ${String(s.users).padStart(6)}  ${fmt(k["Recall@5"])}   ${fmt(k["Recall@10"])}    ${fmt(k["Recall@20"])}    ` +
          `${fmt(k["NDCG@5"])}  ${fmt(k["NDCG@10"])}   ${fmt(k["NDCG@20"])}   ${fmt(k["MRR@10"])}`,
      );
    }
    lines.push(
      "",
      `test labels in the top ${m.coverage.count}: ${m.coverage.test.covered}/${m.coverage.test.users} (${(100 * m.coverage.test.share).toFixed(1)}%)`,
      `wrote ${runPaths(runDir).retriever.metrics}`,
      `wrote ${runPaths(runDir).retriever.candidates}`,
    );
    ctx.out.write(`${lines.join("\n")}\n`);
  },
};

async function loadConfiguredDataset(ctx: CommandContext): Promise<Dataset> {
  const data = dataSection.get(ctx.config);
  // The dataset remembers its spec and options (datasetSource): the run records them for --resume and eval.
  const { dataset } = await loadDataset(datasetSpecFrom(data), loadOptionsFrom(data));
  log.info(`${dataset.name}: ${dataset.numUsers} users, ${dataset.numItems} items`);
  return dataset;
}
