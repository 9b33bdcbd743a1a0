/**
 * Retriever training into a run folder, following the official LlamaRec BaseTrainer/LRUTrainer loop:
 * validate once before training, then per batch: zero grads → loss + backward → clip grad norm → AdamW
 * step; validate every `valEvery` iterations (counted across epochs); keep the weights with the best
 * validation metric (strictly better only); stop after `patience` validations without improvement; test
 * the best weights and write the ranker's candidates.
 *
 * Deliberate differences from the official code (all stated in docs/formats.md / the report):
 * - validation during training excludes history with the same policy as the test unless `valExclude` is set
 *   (official: none, "faster"; `valExclude: "none"` follows it);
 * - the very first validation always sets the best weights (official: only if Recall@10 > 0, else test crashes);
 * - metrics are averaged over users, not over batches (official averages batch means: small last batch);
 * - a checkpoint (and resume) at every validation; epoch order is derived from (seed, epoch).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Dataset } from "../data/dataset.js";
import {
  checkDatasetMatches,
  datasetRef,
  hasRunConfig,
  type RunConfig,
  readRunConfig,
  runPaths,
  writeRunConfig,
} from "../run/index.js";
import { AdamW } from "../tensor/optim/adamw.js";
import { clipGradNorm } from "../tensor/optim/clip.js";
import { type LoopState, type LoopStopReason, TrainingLoop } from "../training/loop.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { InputError } from "../util/errors.js";
import { type Events, NO_EVENTS } from "../util/events.js";
import { TrainingBatches } from "./batches.js";
import { formatCandidates } from "./candidates.js";
import {
  CHECKPOINT_FILE,
  loadCheckpoint,
  type StopReason,
  saveCheckpoint,
  type TrainerState,
} from "./checkpoint.js";
import { evaluateSplit, splitMetrics } from "./evaluate.js";
import { loadModel, restoreWeights, saveModel, snapshotWeights } from "./model-file.js";
import { createRetriever, resolveModelOptions } from "./registry.js";
import { evaluateRetriever, evaluationPolicy, type RetrieverEvaluation } from "./run-evaluation.js";
import { resolveTrainerConfig, type TrainerConfig } from "./train-config.js";
import { llamaRecNoDecay } from "./weight-decay.js";

export interface TrainRetrieverOptions {
  dataset: Dataset;
  /** Loader options of the dataset, recorded so `llamarec eval` can load the same split again. */
  datasetOptions?: Record<string, unknown>;
  model: string;
  /** Model options (e.g. dropout); numItems and seed are filled in. */
  modelOptions?: Record<string, unknown>;
  training?: Partial<TrainerConfig>;
  runDir: string;
  /** Continue from the run folder's last checkpoint (config.json is authoritative). */
  resume?: boolean;
  /** Called after every optimizer step (tests use it to simulate a kill). */
  onIteration?: (iteration: number) => void;
  /** Where logs, progress, metrics and written files are reported. */
  events?: Events;
  now?: () => number;
}

export interface TrainRetrieverResult {
  runDir: string;
  iterations: number;
  bestIteration: number;
  bestValue: number;
  stoppedBy: StopReason;
  evaluation: RetrieverEvaluation;
  /** Training throughput of this session (optimizer steps per second). */
  iterationsPerSecond: number;
}

/** Trains (or resumes) the retriever and saves the best weights as model.safetensors + model.json. */
export async function trainRetrieverModel(
  opts: TrainRetrieverOptions,
): Promise<Omit<TrainRetrieverResult, "evaluation">> {
  const now = opts.now ?? Date.now;
  const events = opts.events ?? NO_EVENTS;
  const paths = runPaths(opts.runDir);
  const checkpointPath = join(paths.retriever.checkpointDir, CHECKPOINT_FILE);
  const { dataset } = opts;
  // An unknown model or a bad model option fails before anything is written.
  resolveModelOptions(opts.model, opts.modelOptions ?? {}, "retriever.options");

  const runConfig = await prepareRunConfig(opts);
  const retrieverSection = runConfig.retriever!;
  const cfg = retrieverSection.training as unknown as TrainerConfig;
  const model = createRetriever(retrieverSection.model, {
    ...(retrieverSection.modelOptions as Record<string, unknown>),
    numItems: dataset.numItems,
    maxLen: cfg.maxLen,
  });
  if (retrieverSection.modelConfig === undefined) {
    // Record the model's fully resolved configuration (its defaults included) beside the options given.
    retrieverSection.modelConfig = { ...model.config };
    await writeRunConfig(opts.runDir, runConfig);
  }
  const configKey = JSON.stringify({ dataset: runConfig.dataset.fingerprint, retriever: retrieverSection });
  const params = model.parameters();
  const optimizer = new AdamW(params, {
    lr: cfg.lr,
    weightDecay: cfg.weightDecay,
    eps: cfg.adamEps,
    noDecay: llamaRecNoDecay,
  });
  const batchOptions = {
    batchSize: cfg.batchSize,
    maxLen: cfg.maxLen,
    slidingWindow: cfg.slidingWindow,
    seed: cfg.seed,
  };
  // A model may batch its own way (BERT4Rec's cloze masks, NARM's prefixes); default: the shared windows.
  const batches =
    model.trainingBatches?.(dataset.train, batchOptions) ?? new TrainingBatches(dataset.train, batchOptions);

  // Where the next batch comes from; the loop's own state (step, best, patience, ...) lives in the loop.
  let epoch = 0;
  let batchInEpoch = 0;
  let best = snapshotWeights(params);
  let resumeFrom: LoopState | null = null;

  const resumed = opts.resume === true && existsSync(checkpointPath);
  if (resumed) {
    const ckpt = loadCheckpoint(checkpointPath);
    if (ckpt.configKey !== configKey) {
      throw new InputError(`${checkpointPath} belongs to a different configuration than ${paths.config}`);
    }
    restoreWeights(params, ckpt.weights, checkpointPath);
    best = ckpt.best;
    optimizer.loadStateDict(ckpt.optimizer);
    ({ epoch, batchInEpoch } = ckpt.state);
    resumeFrom = toLoopState(ckpt.state);
    if (ckpt.state.modelRandomState && model.setRandomState)
      model.setRandomState(ckpt.state.modelRandomState);
    events.log("info", `resuming ${paths.root} at iteration ${ckpt.state.iteration} (epoch ${epoch + 1})`);
  } else if (opts.resume) {
    events.log("info", `no checkpoint in ${paths.retriever.checkpointDir}; starting from iteration 0`);
  }

  const loop = new TrainingLoop(
    {
      valEvery: cfg.valEvery,
      patience: cfg.patience,
      logEvery: cfg.logEvery,
      maxSteps: cfg.maxIterations,
      validateAtStart: true, // official: validate(0, 0) before the first batch
      stepKey: "iteration",
      task: "training retriever",
      metricPrefix: "retriever",
    },
    {
      exhausted: () => epoch >= cfg.maxEpochs,
      step: () => {
        const batch = batches.batch(epoch, batchInEpoch);
        model.setTraining(true);
        optimizer.zeroGrad();
        const loss = model.lossAndBackward(batch);
        if (!Number.isFinite(loss)) return { loss };
        if (cfg.maxGradNorm > 0) clipGradNorm(params, cfg.maxGradNorm);
        optimizer.step();
        batchInEpoch++;
        if (batchInEpoch === batches.batchesPerEpoch) {
          epoch++;
          batchInEpoch = 0;
        }
        return { loss };
      },
      validate: () => {
        const evaluation = evaluateSplit(model, dataset, "val", {
          maxLen: cfg.maxLen,
          batchSize: cfg.evalBatchSize,
          exclude: cfg.valExclude ?? cfg.exclude,
          tie: cfg.tie,
          candidateCount: 0,
        });
        // The whole user records (tie counts included), as the final test: one evaluator.
        const metrics = splitMetrics(evaluation, cfg.metricKs);
        return { value: metrics[cfg.bestMetric]!, metrics };
      },
      saveBest: () => {
        best = snapshotWeights(params);
      },
      checkpoint: (loopState) => {
        saveCheckpoint(checkpointPath, {
          state: fromLoopState(loopState, {
            epoch,
            batchInEpoch,
            modelRandomState: model.getRandomState?.() ?? null,
          }),
          weights: snapshotWeights(params),
          best,
          optimizer: optimizer.stateDict(),
          configKey,
        });
      },
      trainEntry: (loss, _state, elapsedSeconds) => ({
        epoch,
        loss,
        lr: optimizer.lr,
        elapsed: round(elapsedSeconds),
      }),
      valEntry: (v, { improved, state, elapsedSeconds }) => ({
        epoch,
        metrics: v.metrics,
        improved,
        patience: state.patienceCounter,
        elapsed: round(elapsedSeconds),
      }),
      describeValidation: (v, improved, state) =>
        `iteration ${state.step}: val ${cfg.bestMetric} ${v.value.toFixed(4)}` +
        `${improved ? " (best)" : ""}; best ${state.bestValue!.toFixed(4)} at ${state.bestStep ?? 0}` +
        `, patience ${state.patienceCounter}/${cfg.patience}`,
      ...(opts.onIteration ? { afterStep: opts.onIteration } : {}),
    },
    { trainLog: paths.retriever.trainLog, resumeFrom, events, now },
  );
  const { state: loopState, sessionSteps, sessionSeconds } = await loop.run();
  const state = fromLoopState(loopState, { epoch, batchInEpoch, modelRandomState: null });
  events.log(
    "info",
    `training stopped (${state.stoppedBy}) at iteration ${state.iteration}; best val ${cfg.bestMetric} ` +
      `${state.bestValue!.toFixed(4)} at iteration ${state.bestIteration}`,
  );

  restoreWeights(params, best, "best weights");
  await saveModel(model, paths.retriever.model, paths.retriever.modelJson);
  events.artifact("retriever.model", paths.retriever.model);
  return {
    runDir: paths.root,
    iterations: state.iteration,
    bestIteration: state.bestIteration,
    bestValue: state.bestValue!,
    stoppedBy: state.stoppedBy!,
    iterationsPerSecond: sessionSeconds > 0 ? sessionSteps / sessionSeconds : Number.NaN,
  };
}

/**
 * The end of a retriever run: evaluates the saved best model (through the same path as `llamarec eval`,
 * so both always agree) on validation and test, and writes the ranker's candidates and metrics.json with
 * the model selection recorded in the final checkpoint.
 */
export async function writeRetrieverOutputs(
  runDir: string,
  dataset: Dataset,
  events: Events = NO_EVENTS,
): Promise<RetrieverEvaluation> {
  const paths = runPaths(runDir);
  const runConfig = await readRunConfig(runDir);
  checkDatasetMatches(runConfig.dataset, dataset, runDir);
  if (!runConfig.retriever) throw new InputError(`${paths.config}: no "retriever" section (train it first)`);
  const cfg = runConfig.retriever.training as unknown as TrainerConfig;
  const state = loadCheckpoint(join(paths.retriever.checkpointDir, CHECKPOINT_FILE)).state;
  const saved = await loadModel(paths.retriever.model, paths.retriever.modelJson);
  const evaluation = evaluateRetriever(saved, dataset, cfg);
  await writeFileAtomic(paths.retriever.candidates, formatCandidates(evaluation.candidates));
  await writeJsonAtomic(paths.retriever.metrics, {
    model: runConfig.retriever.model,
    dataset: { name: runConfig.dataset.name, fingerprint: runConfig.dataset.fingerprint },
    selection: {
      metric: cfg.bestMetric,
      split: "val",
      bestIteration: state.bestIteration,
      bestValue: state.bestValue,
      iterations: state.iteration,
      validations: state.validations,
      stoppedBy: state.stoppedBy,
      trainingSeconds: round(state.elapsedSeconds),
    },
    policy: evaluationPolicy(cfg),
    val: evaluation.val,
    test: evaluation.test,
    candidates: evaluation.coverage,
  });
  events.artifact("retriever.candidates", paths.retriever.candidates);
  events.artifact("retriever.metrics", paths.retriever.metrics);
  for (const split of ["val", "test"] as const)
    for (const [name, value] of Object.entries(evaluation[split].metrics))
      events.metric(`retriever/${split}/${name}`, value, { split });
  return evaluation;
}

/** Trains (or resumes) the retriever, then evaluates it and writes its candidates (writeRetrieverOutputs). */
export async function trainRetriever(opts: TrainRetrieverOptions): Promise<TrainRetrieverResult> {
  const trained = await trainRetrieverModel(opts);
  const evaluation = await writeRetrieverOutputs(opts.runDir, opts.dataset, opts.events);
  return { ...trained, evaluation };
}

/** Fresh run: resolve and write config.json (refusing to overwrite a run). Resume: read it back. */
async function prepareRunConfig(opts: TrainRetrieverOptions): Promise<RunConfig> {
  const paths = runPaths(opts.runDir);
  const training = resolveTrainerConfig(opts.dataset.name, opts.training);
  const modelOptions = { ...(opts.modelOptions ?? {}), seed: training.seed };
  if (opts.resume && existsSync(paths.config)) {
    const stored = await readRunConfig(opts.runDir);
    if (!stored.retriever) throw new InputError(`${paths.config} has no retriever section to resume`);
    const ref = datasetRef(opts.dataset, opts.datasetOptions);
    if (stored.dataset.fingerprint !== ref.fingerprint) {
      throw new InputError(
        `cannot resume ${paths.root}: it was trained on a different dataset split (${stored.dataset.fingerprint})`,
      );
    }
    if (stored.retriever.model !== opts.model) {
      throw new InputError(
        `cannot resume ${paths.root}: it trains "${stored.retriever.model}", not "${opts.model}"`,
      );
    }
    // Explicitly given settings must agree with the stored run; unspecified ones come from it.
    const conflicts = Object.entries(opts.training ?? {})
      .filter(
        ([k, v]) => v !== undefined && JSON.stringify(v) !== JSON.stringify(stored.retriever!.training[k]),
      )
      .map(([k]) => k);
    if (conflicts.length > 0) {
      throw new InputError(`cannot resume ${paths.root} with different settings: ${conflicts.join(", ")}`);
    }
    return stored;
  }
  if (
    existsSync(paths.retriever.metrics) ||
    existsSync(join(paths.retriever.checkpointDir, CHECKPOINT_FILE))
  ) {
    throw new InputError(
      `run folder ${paths.root} already holds a training run; use --resume or another --run name`,
    );
  }
  // Sections other stages wrote (e.g. the pipeline's stage records) are kept.
  const existing = hasRunConfig(opts.runDir) ? await readRunConfig(opts.runDir) : null;
  const config: RunConfig = {
    ...existing,
    version: 1,
    createdAt: existing?.createdAt ?? new Date().toISOString(),
    dataset: datasetRef(opts.dataset, opts.datasetOptions),
    retriever: {
      model: opts.model,
      modelOptions,
      training: training as unknown as Record<string, unknown>,
    },
  };
  await writeRunConfig(opts.runDir, config);
  return config;
}

const STOP_NAMES: Record<LoopStopReason, StopReason> = {
  "early-stopping": "early-stopping",
  "max-steps": "max-iterations",
  exhausted: "max-epochs",
};

/** The checkpoint keeps the retriever's own field names (iteration, bestIteration, stop reasons). */
function fromLoopState(
  s: LoopState,
  extra: Pick<TrainerState, "epoch" | "batchInEpoch" | "modelRandomState">,
): TrainerState {
  return {
    iteration: s.step,
    epoch: extra.epoch,
    batchInEpoch: extra.batchInEpoch,
    validations: s.validations,
    bestValue: s.bestValue,
    bestIteration: s.bestStep ?? 0,
    patienceCounter: s.patienceCounter,
    elapsedSeconds: s.elapsedSeconds,
    lossSum: s.lossSum,
    lossCount: s.lossCount,
    modelRandomState: extra.modelRandomState,
    stoppedBy: s.stoppedBy === null ? null : STOP_NAMES[s.stoppedBy],
  };
}

function toLoopState(t: TrainerState): LoopState {
  const reason = (Object.keys(STOP_NAMES) as LoopStopReason[]).find((k) => STOP_NAMES[k] === t.stoppedBy);
  return {
    step: t.iteration,
    validations: t.validations,
    bestValue: t.bestValue,
    bestStep: t.bestValue === null ? null : t.bestIteration,
    patienceCounter: t.patienceCounter,
    elapsedSeconds: t.elapsedSeconds,
    lossSum: t.lossSum,
    lossCount: t.lossCount,
    stoppedBy: reason ?? null,
  };
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
