/**
 * Retriever training into a run folder, following the official LlamaRec BaseTrainer/LRUTrainer loop:
 * validate once before training, then per batch: zero grads → loss + backward → clip grad norm → AdamW
 * step; validate every `valEvery` iterations (counted across epochs); keep the weights with the best
 * validation metric (strictly better only); stop after `patience` validations without improvement; test
 * the best weights and write the ranker's candidates.
 *
 * Deliberate differences from the official code (all stated in docs/formats.md / the report):
 * - validation during training excludes history with the same policy as the test (official: none, "faster");
 * - the very first validation always sets the best weights (official: only if Recall@10 > 0, else test crashes);
 * - metrics are averaged over users, not over batches (official averages batch means: small last batch);
 * - a checkpoint (and resume) at every validation; epoch order is derived from (seed, epoch).
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Dataset } from "../data/dataset.js";
import { metricsFromRanks } from "../eval/metrics.js";
import { datasetRef, type RunConfig, readRunConfig, runPaths, writeRunConfig } from "../run/index.js";
import { AdamW } from "../tensor/optim/adamw.js";
import { clipGradNorm } from "../tensor/optim/clip.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { InputError } from "../util/errors.js";
import { log } from "../util/log.js";
import { progress } from "../util/progress.js";
import { TrainingBatches } from "./batches.js";
import { formatCandidates } from "./candidates.js";
import {
  CHECKPOINT_FILE,
  type Checkpoint,
  loadCheckpoint,
  type StopReason,
  saveCheckpoint,
  type TrainerState,
} from "./checkpoint.js";
import { evaluateSplit } from "./evaluate.js";
import { loadModel, restoreWeights, saveModel, snapshotWeights } from "./model-file.js";
import { createRetriever, retrieverEntry } from "./registry.js";
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

export async function trainRetriever(opts: TrainRetrieverOptions): Promise<TrainRetrieverResult> {
  const now = opts.now ?? Date.now;
  const paths = runPaths(opts.runDir);
  const checkpointPath = join(paths.retriever.checkpointDir, CHECKPOINT_FILE);
  const { dataset } = opts;
  retrieverEntry(opts.model); // an unknown model fails before anything is written

  const runConfig = await prepareRunConfig(opts);
  const retrieverSection = runConfig.retriever!;
  const cfg = retrieverSection.training as unknown as TrainerConfig;
  const model = createRetriever(retrieverSection.model, {
    ...(retrieverSection.modelOptions as Record<string, unknown>),
    numItems: dataset.numItems,
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
  const batches = new TrainingBatches(dataset.train, {
    batchSize: cfg.batchSize,
    maxLen: cfg.maxLen,
    slidingWindow: cfg.slidingWindow,
    seed: cfg.seed,
  });

  let state: TrainerState = {
    iteration: 0,
    epoch: 0,
    batchInEpoch: 0,
    validations: 0,
    bestValue: null,
    bestIteration: 0,
    patienceCounter: 0,
    elapsedSeconds: 0,
    lossSum: 0,
    lossCount: 0,
    modelRandomState: null,
    stoppedBy: null,
  };
  let best = snapshotWeights(params);

  const resumed = opts.resume === true && existsSync(checkpointPath);
  if (resumed) {
    const ckpt = loadCheckpoint(checkpointPath);
    if (ckpt.configKey !== configKey) {
      throw new InputError(`${checkpointPath} belongs to a different configuration than ${paths.config}`);
    }
    restoreWeights(params, ckpt.weights, checkpointPath);
    best = ckpt.best;
    optimizer.loadStateDict(ckpt.optimizer);
    state = ckpt.state;
    if (state.modelRandomState && model.setRandomState) model.setRandomState(state.modelRandomState);
    await truncateTrainLog(paths.retriever.trainLog, state.iteration);
    log.info(`resuming ${paths.root} at iteration ${state.iteration} (epoch ${state.epoch + 1})`);
  } else {
    if (opts.resume) log.info(`no checkpoint in ${paths.retriever.checkpointDir}; starting from iteration 0`);
    await writeFileAtomic(paths.retriever.trainLog, "");
  }

  const sessionStart = now();
  const sessionStartIteration = state.iteration;
  const elapsed = () => state.elapsedSeconds + (now() - sessionStart) / 1000;
  const appendLog = (entry: Record<string, unknown>) =>
    appendFileSync(paths.retriever.trainLog, `${JSON.stringify(entry)}\n`);

  const checkpoint = () => {
    const ckpt: Checkpoint = {
      state: { ...state, elapsedSeconds: elapsed(), modelRandomState: model.getRandomState?.() ?? null },
      weights: snapshotWeights(params),
      best,
      optimizer: optimizer.stateDict(),
      configKey,
    };
    saveCheckpoint(checkpointPath, ckpt);
  };

  const validate = () => {
    const evaluation = evaluateSplit(model, dataset, "val", {
      maxLen: cfg.maxLen,
      batchSize: cfg.evalBatchSize,
      exclude: cfg.exclude,
      tie: cfg.tie,
      candidateCount: 0,
    });
    const metrics = metricsFromRanks(
      evaluation.results.map((r) => r.rank),
      cfg.metricKs,
    );
    const value = metrics[cfg.bestMetric]!;
    state.validations++;
    const improved = state.bestValue === null || value > state.bestValue;
    if (improved) {
      state.bestValue = value;
      state.bestIteration = state.iteration;
      state.patienceCounter = 0;
      best = snapshotWeights(params);
    } else {
      state.patienceCounter++;
    }
    appendLog({
      type: "val",
      iteration: state.iteration,
      epoch: state.epoch,
      metrics,
      improved,
      patience: state.patienceCounter,
      elapsed: round(elapsed()),
    });
    log.info(
      `iteration ${state.iteration}: val ${cfg.bestMetric} ${value.toFixed(4)}` +
        `${improved ? " (best)" : ""}; best ${state.bestValue!.toFixed(4)} at ${state.bestIteration}` +
        `, patience ${state.patienceCounter}/${cfg.patience}`,
    );
    checkpoint();
    return state.patienceCounter >= cfg.patience;
  };

  if (!resumed) {
    // Official: validate(0, 0) before the first batch.
    if (validate()) state.stoppedBy = "early-stopping";
  } else if (state.stoppedBy === null) {
    // Killed after the deciding validation's checkpoint but before the stop was recorded.
    if (state.patienceCounter >= cfg.patience) state.stoppedBy = "early-stopping";
    else if (cfg.maxIterations !== null && state.iteration >= cfg.maxIterations)
      state.stoppedBy = "max-iterations";
  }

  const bar = state.stoppedBy === null ? progress("training", cfg.maxIterations ?? undefined) : null;
  while (state.stoppedBy === null) {
    // Give the event loop a turn: signal handlers (Ctrl-C message) and timers run between steps.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (state.epoch >= cfg.maxEpochs) {
      state.stoppedBy = "max-epochs";
      break;
    }
    const batch = batches.batch(state.epoch, state.batchInEpoch);
    model.setTraining(true);
    optimizer.zeroGrad();
    const loss = model.lossAndBackward(batch);
    if (!Number.isFinite(loss)) {
      throw new Error(
        `training diverged: loss ${loss} at iteration ${state.iteration + 1} (last checkpoint in ${checkpointPath})`,
      );
    }
    if (cfg.maxGradNorm > 0) clipGradNorm(params, cfg.maxGradNorm);
    optimizer.step();
    state.iteration++;
    state.batchInEpoch++;
    if (state.batchInEpoch === batches.batchesPerEpoch) {
      state.epoch++;
      state.batchInEpoch = 0;
    }
    state.lossSum += loss;
    state.lossCount++;
    if (state.iteration % cfg.logEvery === 0) {
      appendLog({
        type: "train",
        iteration: state.iteration,
        epoch: state.epoch,
        loss: state.lossSum / state.lossCount,
        lr: optimizer.lr,
        elapsed: round(elapsed()),
      });
      state.lossSum = 0;
      state.lossCount = 0;
    }
    bar?.tick(1, `loss ${loss.toFixed(3)}`);
    opts.onIteration?.(state.iteration);
    const atValidation = state.iteration % cfg.valEvery === 0;
    if (atValidation && validate()) state.stoppedBy = "early-stopping";
    else if (cfg.maxIterations !== null && state.iteration >= cfg.maxIterations) {
      // A last validation so the final weights take part in model selection.
      if (!atValidation) validate();
      state.stoppedBy = "max-iterations";
    }
  }
  bar?.done();
  const sessionIterations = state.iteration - sessionStartIteration;
  const sessionSeconds = (now() - sessionStart) / 1000;
  // Record the end so that a resume after a kill during the final evaluation skips straight to it.
  checkpoint();
  log.info(
    `training stopped (${state.stoppedBy}) at iteration ${state.iteration}; best val ${cfg.bestMetric} ` +
      `${state.bestValue!.toFixed(4)} at iteration ${state.bestIteration}`,
  );

  restoreWeights(params, best, "best weights");
  await saveModel(model, paths.retriever.model, paths.retriever.modelJson);
  // Evaluate what is on disk, through the same path as `llamarec eval`, so both always agree.
  const saved = await loadModel(paths.retriever.model, paths.retriever.modelJson);
  const evaluation = evaluateRetriever(saved, dataset, cfg);
  await writeFileAtomic(paths.retriever.candidates, formatCandidates(evaluation.candidates));
  await writeJsonAtomic(paths.retriever.metrics, {
    model: retrieverSection.model,
    dataset: { name: runConfig.dataset.name, fingerprint: runConfig.dataset.fingerprint },
    selection: {
      metric: cfg.bestMetric,
      split: "val",
      bestIteration: state.bestIteration,
      bestValue: state.bestValue,
      iterations: state.iteration,
      validations: state.validations,
      stoppedBy: state.stoppedBy,
      trainingSeconds: round(elapsed()),
    },
    policy: evaluationPolicy(cfg),
    val: evaluation.val,
    test: evaluation.test,
    candidates: evaluation.coverage,
  });
  return {
    runDir: paths.root,
    iterations: state.iteration,
    bestIteration: state.bestIteration,
    bestValue: state.bestValue!,
    stoppedBy: state.stoppedBy,
    evaluation,
    iterationsPerSecond: sessionSeconds > 0 ? sessionIterations / sessionSeconds : Number.NaN,
  };
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
  const config: RunConfig = {
    version: 1,
    createdAt: new Date().toISOString(),
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

/** Keeps the log lines up to the checkpoint's iteration, so a resumed log reads like an uninterrupted one. */
async function truncateTrainLog(path: string, iteration: number): Promise<void> {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => {
      if (line.trim() === "") return false;
      try {
        return (JSON.parse(line) as { iteration: number }).iteration <= iteration;
      } catch {
        return false; // a torn last line from the kill
      }
    });
  await writeFileAtomic(path, kept.length === 0 ? "" : `${kept.join("\n")}\n`);
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
