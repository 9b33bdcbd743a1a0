/**
 * `llamarec run [--config file] [--profile quick|paper] [--run name]`: the whole pipeline in one run folder
 * (src/pipeline): data → retriever → candidates → ranker → rank → evaluate → report. Running the same
 * command again continues where it stopped (after a kill too) and reruns only stages whose inputs changed.
 */
import { relative } from "node:path";
import { dataSection } from "../../config/core.js";
import { headlineTable } from "../../pipeline/report-stage.js";
import { runPipeline } from "../../pipeline/run.js";
import { isProfileName, type PipelineSettings, PROFILES, profileSettings } from "../../pipeline/settings.js";
import type { BackendKind } from "../../ranker/backends/open.js";
import { BACKEND_KINDS } from "../../ranker/backends/open.js";
import { rankerSection } from "../../ranker/training/config-section.js";
import type { RankerTrainConfig } from "../../ranker/training/trainer.js";
import { retrieverSection, trainingOverrides } from "../../retrievers/config-section.js";
import { resolveRunDir } from "../../run/index.js";
import { consoleEvents } from "../../util/console-events.js";
import { InputError } from "../../util/errors.js";
import { datasetSpecFrom, loadOptionsFrom } from "../data-options.js";
import type { CommandSpec } from "../registry.js";

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The profile's settings with what the config file (and flags) state on top. */
function settingsFrom(ctx: Parameters<CommandSpec["run"]>[0]): PipelineSettings {
  const profile = (ctx.opts.profile as string | undefined) ?? "quick";
  if (!isProfileName(profile))
    throw new InputError(`--profile must be ${PROFILES.join(" or ")}, got "${profile}"`);
  const s = profileSettings(profile);
  const data = dataSection.get(ctx.config);
  if (data.dataset !== undefined || data.format !== undefined) {
    s.data = { spec: datasetSpecFrom(data), load: definedOnly(loadOptionsFrom(data)) };
  } else {
    s.data.load = { ...s.data.load, ...definedOnly(loadOptionsFrom(data)) };
  }
  const r = retrieverSection.get(ctx.config);
  if ("retriever" in ctx.config) s.retriever.model = r.model;
  s.retriever.modelOptions = {
    ...s.retriever.modelOptions,
    ...r.options,
    ...(r.dropout === undefined ? {} : { dropout: r.dropout }),
  };
  const training = trainingOverrides(r);
  s.retriever.training = { ...s.retriever.training, ...training };
  const k = rankerSection.get(ctx.config);
  const rankerModel = (ctx.opts.rankerModel as string | undefined) ?? k.model;
  if (rankerModel !== undefined) {
    s.ranker.model = rankerModel;
    if (!rankerModel.startsWith("scratch:")) delete s.ranker.tokenizer;
    if (profile === "paper") s.rank.backend = rankerModel.endsWith(".gguf") ? "llamacpp" : "engine";
  }
  if (k.tokenizer !== undefined) s.ranker.tokenizer = k.tokenizer;
  const rankerTraining: Partial<RankerTrainConfig> = definedOnly({
    mode: k.mode,
    lr: k.lr,
    warmupSteps: k.warmupSteps,
    weightDecay: k.weightDecay,
    maxGradNorm: k.maxGradNorm,
    batchSize: k.batchSize,
    microBatchSize: k.microBatchSize,
    epochs: k.epochs,
    maxSteps: k.steps,
    valEvery: k.valEvery,
    valUsers: k.valUsers,
    patience: k.patience,
    logEvery: k.logEvery,
    seed: k.seed,
  });
  if (k.loraR !== undefined || k.loraAlpha !== undefined || k.loraDropout !== undefined || k.loraTargets) {
    throw new InputError("llamarec run: set LoRA r/alpha/dropout/targets with `llamarec train ranker`");
  }
  s.ranker.training = { ...s.ranker.training, ...rankerTraining };
  s.ranker.prompt = {
    ...s.ranker.prompt,
    ...definedOnly({
      numCandidates: k.numCandidates,
      maxHistory: k.maxHistory,
      maxTitleTokens: k.maxTitleTokens,
      maxPromptTokens: k.maxPromptTokens,
      letterMode: k.letterMode,
    }),
  };
  const backend = ctx.opts.backend as string | undefined;
  if (backend !== undefined) {
    if (!(BACKEND_KINDS as readonly string[]).includes(backend))
      throw new InputError(`--backend must be ${BACKEND_KINDS.join(", ")}, got "${backend}"`);
    s.rank.backend = backend as BackendKind;
  }
  return s;
}

export const runCommand: CommandSpec = {
  path: ["run"],
  summary: "the whole pipeline: data, retriever, candidates, ranker, rank, evaluate, report (resumable)",
  description:
    "Runs LlamaRec end to end in one run folder. Profiles: quick (default; the bundled ml-latest-small, " +
    "LRURec with a bounded schedule, a scratch:tiny ranker on the bundled Llama 2 tokenizer, ~10 minutes on " +
    "two cores) and paper (the official retriever schedule and the paper's LoRA ranker settings; give the " +
    "ranker model with --ranker-model or ranker.model). The config file's data/retriever/ranker sections " +
    "change the profile's settings. Each stage records its inputs' hash, status, outputs, wall time and " +
    "peak memory in <run>/config.json: the same command again skips finished stages, resumes an interrupted " +
    "one from its checkpoint (after kill -9 too) and reruns only what a changed setting affects.",
  configure(cmd) {
    cmd
      .option("--profile <name>", `settings to start from: ${PROFILES.join(", ")} (default quick)`)
      .option("--run <name>", "run folder name under --runs-dir, or a path (default <profile>-<dataset>)")
      .option("--runs-dir <folder>", "where run folders are (default runs)", "runs")
      .option("--ranker-model <model>", "ranker model: .gguf file, HF folder or scratch:<size>")
      .option("--backend <kind>", `ranking backend: ${BACKEND_KINDS.join(", ")}`);
  },
  async run(ctx) {
    const settings = settingsFrom(ctx);
    const datasetName =
      "name" in settings.data.spec && settings.data.spec.name ? settings.data.spec.name : "dataset";
    const runName = (ctx.opts.run as string | undefined) ?? `${settings.profile}-${datasetName}`;
    const runDir = resolveRunDir(runName, ctx.opts.runsDir as string);
    const started = performance.now();
    const result = await runPipeline({ runDir, settings, events: consoleEvents() });
    const seconds = (performance.now() - started) / 1000;
    const rows = result.stages.map(
      (s) =>
        `${s.stage.padEnd(11)} ${s.action.padEnd(8)} ${s.wallSeconds.toFixed(1).padStart(8)}s ${s.peakRssMiB.toFixed(0).padStart(7)} MiB`,
    );
    const e = result.evaluation;
    const report = relative(process.cwd(), result.reportMarkdown) || result.reportMarkdown;
    ctx.out.write(
      [
        `run: ${result.runDir} (profile ${settings.profile}, ${seconds.toFixed(1)}s this session)`,
        "",
        "stage       action       wall   peak RSS",
        ...rows,
        "",
        `test: ${e.users} users, ${e.subsetUsers} with the label in the top-${e.numCandidates} (retrieval subset)`,
        headlineTable(e),
        "",
        `report: ${report}`,
        "",
      ].join("\n"),
    );
  },
};
