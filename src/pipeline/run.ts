/**
 * LlamaRec end to end in one run folder: prepare data → train retriever → candidates → train ranker →
 * rank → evaluate → report. Each stage records in config.json the hash of its inputs (its settings and
 * its upstream stages' hashes), its status, outputs, wall time and peak memory. Running the same command
 * again skips every stage that is done with unchanged inputs, resumes an interrupted training stage from
 * its checkpoint (bit-exact, so a run killed with -9 ends with the same metrics as an uninterrupted one),
 * and reruns a stage whose inputs changed together with every stage after it.
 */
import { rm } from "node:fs/promises";
import type { Dataset } from "../data/dataset.js";
import { loadDataset } from "../data/index.js";
import { rankRun } from "../ranker/rank-run.js";
import { trainRankerRun } from "../ranker/training/ranker-run.js";
import { trainRetrieverModel, writeRetrieverOutputs } from "../retrievers/trainer.js";
import {
  datasetRef,
  hasRunConfig,
  type RunConfig,
  readRunConfig,
  runPaths,
  type StageRecord,
  updateRunConfig,
  writeRunConfig,
} from "../run/index.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { type Events, NO_EVENTS } from "../util/events.js";
import { type Evaluation, evaluateRun } from "./evaluate.js";
import { writeRunReport } from "./report-stage.js";
import type { PipelineSettings } from "./settings.js";
import { validateSettings } from "./settings.js";
import {
  clearStageRecords,
  decide,
  hashInputs,
  MIB,
  PeakMemory,
  relativeOutputs,
  type StageDecision,
  writeStageRecord,
} from "./stage-record.js";

export const STAGES = ["data", "retriever", "candidates", "ranker", "rank", "evaluate", "report"] as const;
export type StageName = (typeof STAGES)[number];

export interface StageSummary {
  stage: StageName;
  /** What happened in this invocation. */
  action: "skipped" | "resumed" | "ran";
  /** Wall time and peak memory of the stage as recorded (summed over sessions for resumed stages). */
  wallSeconds: number;
  peakRssMiB: number;
}

export interface PipelineResult {
  runDir: string;
  stages: StageSummary[];
  evaluation: Evaluation;
  reportMarkdown: string;
}

export interface RunPipelineOptions {
  runDir: string;
  settings: PipelineSettings;
  events?: Events;
  /** Called when a stage starts (tests simulate kills here). */
  onStage?: (stage: StageName, decision: StageDecision) => void;
}

interface StageContext {
  runDir: string;
  settings: PipelineSettings;
  dataset: Dataset;
  events: Events;
  resume: boolean;
}

type StageRun = (ctx: StageContext) => Promise<string[]>;

const RUNNERS: Record<Exclude<StageName, "data">, StageRun> = {
  async retriever({ runDir, settings, dataset, events, resume }) {
    const config = await readRunConfig(runDir);
    const r = settings.retriever;
    await trainRetrieverModel({
      dataset,
      datasetOptions: config.dataset.options,
      model: r.model,
      modelOptions: r.modelOptions,
      training: r.training,
      runDir,
      resume: resume && config.retriever !== undefined,
      events,
    });
    const p = runPaths(runDir).retriever;
    return [p.model, p.modelJson, p.trainLog];
  },
  async candidates({ runDir, dataset, events }) {
    await writeRetrieverOutputs(runDir, dataset, events);
    const p = runPaths(runDir).retriever;
    return [p.candidates, p.metrics];
  },
  async ranker({ runDir, settings, dataset, events, resume }) {
    const r = settings.ranker;
    await trainRankerRun({
      runDir,
      dataset,
      model: r.model,
      ...(r.tokenizer ? { tokenizer: r.tokenizer } : {}),
      training: r.training,
      prompt: r.prompt,
      resume,
      rank: false,
      events,
    });
    const p = runPaths(runDir).ranker;
    return [p.config, p.summary, p.trainLog];
  },
  async rank({ runDir, settings, dataset, events }) {
    await rankRun({
      runDir,
      dataset,
      backend: settings.rank.backend,
      ...(settings.rank.threads === undefined ? {} : { threads: settings.rank.threads }),
      ...(settings.rank.orders === undefined ? {} : { orders: settings.rank.orders }),
      events,
    });
    const p = runPaths(runDir).ranker;
    return [p.ranked, p.metrics];
  },
  async evaluate({ runDir }) {
    const evaluation = await evaluateRun(runDir);
    const path = runPaths(runDir).evaluation;
    await writeJsonAtomic(path, evaluation);
    return [path];
  },
  async report({ runDir, settings, events }) {
    const written = await writeRunReport(runDir, settings.report, events);
    return [written.markdown, written.json, ...written.charts];
  },
};

/** Removes what a stage run afresh would otherwise trip over (stale checkpoints, old outputs). */
async function cleanStage(runDir: string, stage: StageName): Promise<void> {
  const p = runPaths(runDir);
  if (stage === "retriever") {
    await rm(p.retriever.dir, { recursive: true, force: true });
    await updateRunConfig(runDir, (c) => {
      delete c.retriever;
    });
  } else if (stage === "ranker") {
    await rm(p.ranker.dir, { recursive: true, force: true });
  } else if (stage === "report") {
    await rm(p.report.dir, { recursive: true, force: true });
  }
}

function stageHashes(settings: PipelineSettings, fingerprint: string): Record<StageName, string> {
  const data = hashInputs({ data: settings.data });
  const retriever = hashInputs({ dataset: fingerprint, retriever: settings.retriever });
  const candidates = hashInputs({ retriever });
  const ranker = hashInputs({ candidates, ranker: settings.ranker });
  const rank = hashInputs({ ranker, rank: settings.rank });
  const evaluate = hashInputs({ rank, candidates });
  const report = hashInputs({ evaluate, report: settings.report });
  return { data, retriever, candidates, ranker, rank, evaluate, report };
}

export async function runPipeline(o: RunPipelineOptions): Promise<PipelineResult> {
  validateSettings(o.settings);
  const events = o.events ?? NO_EVENTS;
  const { runDir, settings } = o;
  const paths = runPaths(runDir);
  const summaries: StageSummary[] = [];

  // Stage "data": the dataset is needed in memory by every later stage, so it is always loaded (from the
  // prepared-dataset cache when possible); the stage records its statistics and the split's fingerprint.
  const dataStarted = performance.now();
  const dataMemory = new PeakMemory();
  events.log("info", `run folder: ${paths.root}`);
  const loaded = await loadDataset(settings.data.spec, settings.data.load);
  const dataset = loaded.dataset;
  const ref = datasetRef(dataset); // records how loadDataset loaded it (paths made absolute)
  let config: RunConfig;
  if (hasRunConfig(runDir)) {
    config = await readRunConfig(runDir);
    if (config.dataset.fingerprint !== ref.fingerprint) {
      events.log("info", `the dataset split changed: every stage runs again`);
      config.dataset = ref;
    }
  } else {
    config = { version: 1, createdAt: new Date().toISOString(), dataset: ref };
  }
  config.pipeline = { profile: settings.profile, settings };
  await writeRunConfig(runDir, config);
  const hashes = stageHashes(settings, ref.fingerprint);
  const dataRecord = config.stages?.data;
  const dataDecision = decide(dataRecord, hashes.data, paths.root);
  if (dataDecision !== "skip") {
    await writeJsonAtomic(paths.data, { name: dataset.name, stats: loaded.stats, report: loaded.report });
  }
  const dataRecordNew: StageRecord = {
    status: "done",
    inputsHash: hashes.data,
    outputs: relativeOutputs(paths.root, [paths.data]),
    startedAt: new Date(Date.now() - (performance.now() - dataStarted)).toISOString(),
    finishedAt: new Date().toISOString(),
    wallSeconds: round((performance.now() - dataStarted) / 1000),
    peakRssMiB: round(dataMemory.stop() / MIB),
  };
  await writeStageRecord(runDir, "data", dataRecordNew);
  summaries.push({
    stage: "data",
    action: dataDecision === "skip" ? "skipped" : "ran",
    wallSeconds: dataRecordNew.wallSeconds,
    peakRssMiB: dataRecordNew.peakRssMiB,
  });
  events.log(
    "info",
    `stage data: ${dataset.name}, ${dataset.numUsers} users, ${dataset.numItems} items (${dataRecordNew.wallSeconds}s)`,
  );

  for (const stage of STAGES.slice(1) as Exclude<StageName, "data">[]) {
    const current = (await readRunConfig(runDir)).stages?.[stage];
    const decision = decide(current, hashes[stage], paths.root);
    o.onStage?.(stage, decision);
    if (decision === "skip") {
      events.log("info", `stage ${stage}: up to date, skipped`);
      summaries.push({
        stage,
        action: "skipped",
        wallSeconds: current!.wallSeconds,
        peakRssMiB: current!.peakRssMiB,
      });
      continue;
    }
    if (decision === "fresh") await cleanStage(runDir, stage);
    // Whatever follows depends on this stage's new outputs.
    await clearStageRecords(runDir, STAGES.slice(STAGES.indexOf(stage) + 1));
    const prior = decision === "resume" ? current : undefined;
    const record: StageRecord = {
      status: "running",
      inputsHash: hashes[stage],
      outputs: [],
      startedAt: prior?.startedAt ?? new Date().toISOString(),
      wallSeconds: prior?.wallSeconds ?? 0,
      peakRssMiB: prior?.peakRssMiB ?? 0,
    };
    await writeStageRecord(runDir, stage, record);
    events.log("info", `stage ${stage}: ${decision === "resume" ? "resuming" : "running"}`);
    const started = performance.now();
    const memory = new PeakMemory();
    let outputs: string[];
    try {
      outputs = await RUNNERS[stage]({ runDir, settings, dataset, events, resume: decision === "resume" });
    } catch (err) {
      memory.stop();
      await writeStageRecord(runDir, stage, {
        ...record,
        status: "failed",
        wallSeconds: round(record.wallSeconds + (performance.now() - started) / 1000),
        error: (err as Error).message,
      });
      throw err;
    }
    const done: StageRecord = {
      ...record,
      status: "done",
      outputs: relativeOutputs(paths.root, outputs),
      finishedAt: new Date().toISOString(),
      wallSeconds: round(record.wallSeconds + (performance.now() - started) / 1000),
      peakRssMiB: round(Math.max(record.peakRssMiB, memory.stop() / MIB)),
    };
    await writeStageRecord(runDir, stage, done);
    events.log("info", `stage ${stage}: done in ${done.wallSeconds}s, peak memory ${done.peakRssMiB} MiB`);
    summaries.push({
      stage,
      action: decision === "resume" ? "resumed" : "ran",
      wallSeconds: done.wallSeconds,
      peakRssMiB: done.peakRssMiB,
    });
  }
  const evaluation = await evaluateRun(runDir);
  return { runDir: paths.root, stages: summaries, evaluation, reportMarkdown: paths.report.markdown };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
