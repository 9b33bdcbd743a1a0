/**
 * Fine-tunes the LLM ranker as the official LlamaRec (train_ranker.py + trainer/llm.py, HF Trainer):
 * - examples: every prefix of the training sequences, 19 random negatives, letters shuffled (examples.ts);
 * - loss: cross-entropy on the answer letter and EOS only (teacher forcing), mean over those tokens of a
 *   micro-batch, divided by the accumulation steps (HF);
 * - LoRA r 8, alpha 32, dropout 0.05 on q_proj/v_proj over a frozen base (or every weight for a model
 *   trained from scratch, mode "full");
 * - AdamW lr 1e-4, betas (0.9, 0.999), eps 1e-8, weight decay 0 (HF default), max grad norm 1.0 (HF
 *   default), 100 warmup steps then linear decay to 0 at the last step (HF "linear"; the first step runs
 *   at lr 0, as there); batch 16 (ML-100k; 12 for Amazon) = micro-batch × accumulation; 1 epoch;
 * - validation every 100 steps: NDCG@10 of the letter scores on the validation retrieval subset; the best
 *   weights are kept and restored at the end (load_best_model_at_end); early stopping after 20 evaluations
 *   without improvement.
 * The engine runs one sequence at a time, so the micro-batch only decides the loss normalisation; the
 * gradient of a batch is accumulated example by example, which keeps one example's tape in memory.
 *
 * Everything goes under `<run>/ranker/`: train-log.jsonl (loss, lr, grad norm, examples/s; validation
 * metrics), checkpoint/ (resume state, written atomically: a complete step folder, then latest.json),
 * best/ (best trainable weights), adapter/ (PEFT folder) + adapter.gguf (llama.cpp) for LoRA, or
 * model.gguf for full training, and train-summary.json.
 * Resuming restores weights, optimizer moments, step, data position, best-so-far and (LoRA) the adapters'
 * dropout generator states, so a resumed run is bit-identical to an uninterrupted one.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Dataset } from "../../data/dataset.js";
import { type Metrics, metricsFromRanks } from "../../eval/metrics.js";
import { loraRandomState, setLoraRandomState } from "../../llm/lora/adapter.js";
import { LLAMAREC_LORA, type LoraConfig } from "../../llm/lora/config.js";
import { exportLoraGguf } from "../../llm/lora/gguf.js";
import { exportPeft } from "../../llm/lora/peft.js";
import { writeLlamaGguf } from "../../llm/model/gguf-export.js";
import type { LlamaForCausalLM } from "../../llm/model/llama.js";
import { type RankerPaths, rankerPaths } from "../../run/paths.js";
import { linearCrossEntropy } from "../../tensor/ops/cross_entropy.js";
import { slice } from "../../tensor/ops/shape.js";
import { AdamW } from "../../tensor/optim/adamw.js";
import { clipGradNorm } from "../../tensor/optim/clip.js";
import { Rng } from "../../tensor/rng.js";
import { loadSafetensorsFile, type NamedArray, saveSafetensors } from "../../tensor/safetensors.js";
import { backward, clearTape } from "../../tensor/tape.js";
import type { Parameter } from "../../tensor/tensor.js";
import type { WeightLike } from "../../tensor/weight.js";
import { type LoopState, TrainingLoop } from "../../training/loop.js";
import { writeJsonAtomic } from "../../util/atomic.js";
import { InputError } from "../../util/errors.js";
import { type Events, NO_EVENTS } from "../../util/events.js";
import { EngineBackend } from "../backends/engine.js";
import type { PromptBuilder, TrainingExample } from "../prompt.js";
import { orderByScore, scoreInstances } from "../rank.js";
import type { Verbalizer } from "../verbalizer.js";
import { type RankingInstance, shuffleInPlace, type TrainingExamples, toRankingExample } from "./examples.js";
import type { RankerModel } from "./model-source.js";

export interface RankerTrainConfig {
  /** "lora": adapters on a frozen base; "full": every weight (models trained from scratch). */
  mode: "lora" | "full";
  lora: LoraConfig;
  lr: number;
  warmupSteps: number;
  weightDecay: number;
  maxGradNorm: number;
  /** Examples per optimizer step (official train_batch_size). */
  batchSize: number;
  /** Examples per loss normalisation group (official lora_micro_batch_size); must divide batchSize. */
  microBatchSize: number;
  epochs: number;
  /** Stop after this many optimizer steps (null: the whole schedule). The lr schedule spans min(this, epochs). */
  maxSteps: number | null;
  /** Validate (and checkpoint) every this many steps, and after the last one. */
  valEvery: number;
  /** Validate on at most this many (seeded random) validation users; null = all. */
  valUsers: number | null;
  /** Evaluations without a better NDCG@10 before stopping. */
  patience: number;
  /** Write a train-log line every this many steps. */
  logEvery: number;
  seed: number;
}

/** The official defaults (config.py + HF TrainingArguments defaults), ML-100k batch sizes. */
export const OFFICIAL_RANKER_TRAINING: Readonly<RankerTrainConfig> = {
  mode: "lora",
  lora: LLAMAREC_LORA,
  lr: 1e-4,
  warmupSteps: 100,
  weightDecay: 0,
  maxGradNorm: 1,
  batchSize: 16,
  microBatchSize: 16,
  epochs: 1,
  maxSteps: null,
  valEvery: 100,
  valUsers: null,
  patience: 20,
  logEvery: 10,
  seed: 42,
};

export const RANKER_BEST_METRIC = "NDCG@10";
const VAL_KS = [1, 5, 10];

/**
 * Warmup is at most a tenth of the planned steps: the official 100 steps are 2 % of its ~5,500-step
 * epoch, but would take a short run (--steps 5: lr 4e-6 at the last step) entirely and it would not train.
 */
export function effectiveWarmup(warmup: number, totalSteps: number): number {
  return Math.min(warmup, Math.floor(totalSteps / 10));
}

/** HF get_linear_schedule_with_warmup at optimizer step `step` (0-based). */
export function linearWarmupLr(base: number, step: number, warmup: number, total: number): number {
  if (step < warmup) return (base * step) / Math.max(1, warmup);
  return base * Math.max(0, (total - step) / Math.max(1, total - warmup));
}

export function validateTrainConfig(c: RankerTrainConfig): void {
  const posInt = (name: keyof RankerTrainConfig) => {
    const v = c[name];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
      throw new InputError(`ranker training: ${name} must be a positive integer, got ${String(v)}`);
  };
  for (const k of ["batchSize", "microBatchSize", "epochs", "valEvery", "patience", "logEvery"] as const)
    posInt(k);
  if (c.batchSize % c.microBatchSize !== 0)
    throw new InputError(
      `ranker training: batchSize ${c.batchSize} is not a multiple of microBatchSize ${c.microBatchSize}`,
    );
  if (c.maxSteps !== null) posInt("maxSteps");
  if (c.valUsers !== null) posInt("valUsers");
  if (!(c.lr > 0)) throw new InputError(`ranker training: lr must be > 0, got ${c.lr}`);
  if (!(c.warmupSteps >= 0)) throw new InputError(`ranker training: warmupSteps must be >= 0`);
  if (!(c.maxGradNorm > 0)) throw new InputError(`ranker training: maxGradNorm must be > 0`);
  if (c.mode !== "lora" && c.mode !== "full")
    throw new InputError(`ranker training: mode must be "lora" or "full"`);
}

/** Names unique across the model (LoRA parameters are all called lora_A.weight inside their adapter). */
function namedWeight(name: string, p: Parameter): WeightLike {
  return {
    name,
    shape: p.shape,
    data: p.data,
    get grad() {
      return p.grad;
    },
    set grad(g) {
      p.grad = g;
    },
  };
}

/** Mean cross-entropy over the label-masked tokens, back-propagated with weight `seed`. Returns (mean, count). */
export function exampleLossAndBackward(
  model: LlamaForCausalLM,
  example: TrainingExample,
  seedPerToken: number,
): { loss: number; tokens: number } {
  const T = example.ids.length;
  const first = example.labelMask.indexOf(1);
  if (first < 1) throw new RangeError("a training example needs at least one prompt token before its labels");
  const ids = Int32Array.from(example.ids);
  const hidden = model.hidden(ids);
  // Row t predicts token t+1; only rows first-1 .. T-2 can carry labels.
  const rows = slice(hidden, 0, first - 1, T - 1);
  const labels = new Int32Array(T - first).fill(-100);
  let tokens = 0;
  for (let t = first; t < T; t++) {
    if (example.labelMask[t]) {
      labels[t - first] = ids[t]!;
      tokens++;
    }
  }
  const loss = linearCrossEntropy(rows, model.outputWeight, null, labels);
  const value = loss.item();
  if (loss.requiresGrad) backward(loss, seedPerToken * tokens);
  else clearTape();
  return { loss: value, tokens };
}

export interface RankerTrainerOptions {
  rankerDir: string;
  dataset: Dataset;
  model: RankerModel;
  prompts: PromptBuilder;
  verbalizer: Verbalizer;
  training: TrainingExamples;
  validation: readonly RankingInstance[];
  config: RankerTrainConfig;
  resume?: boolean;
  /** Where logs, progress and metrics are reported. */
  events?: Events;
  /** Called after every step (tests, progress bars). */
  onStep?: (step: number, totalSteps: number) => void;
}

export interface ValidationResult {
  step: number;
  metrics: Metrics;
  users: number;
  seconds: number;
}

export interface RankerTrainSummary {
  steps: number;
  totalSteps: number;
  examplesSeen: number;
  seconds: number;
  stoppedEarly: boolean;
  bestStep: number | null;
  bestMetric: number | null;
  bestValidation: Metrics | null;
  trainableParameters: number;
  totalParameters: number;
  finalLoss: number | null;
  /** Files written for ranking: PEFT folder / GGUF adapter / GGUF model. */
  artifacts: Record<string, string>;
}

interface CheckpointState {
  version: 2;
  /** The training loop's state (step, best value and step, patience, wall time, stop reason). */
  loop: LoopState;
  /** Position in the example stream: epoch * examples + index within the epoch's order. */
  cursor: number;
  bestValidation: Metrics | null;
  examplesSeen: number;
  snapshot: string;
  /** LoRA adapters' dropout generator states (loraRandomState, attachment order); absent in full mode. */
  loraRandomState?: number[];
}

export class RankerTrainer {
  private readonly weights: WeightLike[];
  private readonly optimizer: AdamW;
  private readonly paths: RankerPaths;
  private readonly events: Events;
  private readonly valSet: readonly RankingInstance[];

  constructor(private readonly o: RankerTrainerOptions) {
    validateTrainConfig(o.config);
    this.paths = rankerPaths(o.rankerDir);
    this.events = o.events ?? NO_EVENTS;
    const model = o.model.model;
    let named: Array<[string, Parameter]>;
    if (o.config.mode === "lora") {
      if (!model.loraAttachment) model.attachLora(o.config.lora, new Rng(o.config.seed));
      named = model.loraParameters();
    } else {
      model.setBaseTrainable(true);
      named = model.namedParameters();
    }
    this.weights = named.map(([n, p]) => namedWeight(n, p));
    this.optimizer = new AdamW(this.weights, {
      lr: o.config.lr,
      weightDecay: o.config.weightDecay,
      eps: 1e-8,
    });
    if (o.validation.length === 0)
      throw new InputError(
        "no validation users have their label among the candidates; cannot select a ranker",
      );
    const cap = o.config.valUsers;
    this.valSet =
      cap === null || cap >= o.validation.length
        ? o.validation
        : shuffleInPlace([...o.validation], new Rng(o.config.seed + 1)).slice(0, cap);
  }

  get trainableParameters(): number {
    return this.weights.reduce((s, w) => s + w.data.length, 0);
  }

  /** Optimizer steps of the whole schedule. */
  get totalSteps(): number {
    const c = this.o.config;
    const schedule = Math.ceil((this.o.training.length * c.epochs) / c.batchSize);
    return c.maxSteps === null ? schedule : Math.min(schedule, c.maxSteps);
  }

  /** NDCG/Recall/MRR@1,5,10 of the model's letter scores on the validation subset. */
  async validate(step: number): Promise<ValidationResult> {
    const started = performance.now();
    const model = this.o.model.model;
    const backend = new EngineBackend(model); // switches to eval mode
    try {
      const scores = await scoreInstances(this.valSet, {
        dataset: this.o.dataset,
        backend,
        prompts: this.o.prompts,
        verbalizer: this.o.verbalizer,
      });
      const ranks = this.valSet.map((inst, i) => orderByScore(scores[i]!).indexOf(inst.answerIndex) + 1);
      return {
        step,
        metrics: metricsFromRanks(ranks, VAL_KS),
        users: this.valSet.length,
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      model.train(true);
    }
  }

  private trainingExample(index: number, epoch: number): TrainingExample {
    const inst = this.o.training.instance(index, epoch);
    return this.o.prompts.buildTraining(
      toRankingExample(this.o.dataset, inst),
      inst.answerIndex,
      this.o.verbalizer.ids,
    );
  }

  private saveTrainable(path: string): void {
    const tensors = new Map<string, NamedArray>(
      this.weights.map((w) => [w.name, { shape: [...w.shape], data: w.data }]),
    );
    saveSafetensors(path, tensors, { mode: this.o.config.mode });
  }

  private loadTrainable(path: string): void {
    const { tensors } = loadSafetensorsFile(path);
    for (const w of this.weights) {
      const t = tensors.get(w.name);
      if (!t || t.data.length !== w.data.length)
        throw new InputError(
          `${path}: no weight ${w.name} of ${w.data.length} values (different model or LoRA config?)`,
        );
    }
    for (const w of this.weights) w.data.set(tensors.get(w.name)!.data);
  }

  private async writeCheckpoint(
    state: Omit<CheckpointState, "snapshot" | "version" | "loraRandomState">,
  ): Promise<void> {
    const snapshot = `step-${state.loop.step}`;
    const lora = this.o.config.mode === "lora" ? this.o.model.model.loraAttachment : null;
    const dir = join(this.paths.checkpointDir, snapshot);
    await mkdir(dir, { recursive: true });
    this.saveTrainable(join(dir, "trainable.safetensors"));
    const opt = this.optimizer.stateDict();
    saveSafetensors(join(dir, "optimizer.safetensors"), opt.tensors, opt.metadata);
    let previous: string | null = null;
    if (existsSync(this.paths.latest))
      previous = (JSON.parse(readFileSync(this.paths.latest, "utf8")) as CheckpointState).snapshot;
    // latest.json is the commit point: it only ever names a complete snapshot folder.
    const full: CheckpointState = { version: 2, ...state, snapshot };
    if (lora) full.loraRandomState = loraRandomState(lora.adapters.values());
    await writeJsonAtomic(this.paths.latest, full);
    if (previous && previous !== snapshot)
      await rm(join(this.paths.checkpointDir, previous), { recursive: true, force: true });
  }

  private async readCheckpoint(): Promise<CheckpointState | null> {
    if (!existsSync(this.paths.latest)) return null;
    let state: CheckpointState;
    try {
      state = JSON.parse(readFileSync(this.paths.latest, "utf8")) as CheckpointState;
    } catch (err) {
      throw new InputError(`${this.paths.latest}: unreadable checkpoint (${(err as Error).message})`);
    }
    if (state.version !== 2)
      throw new InputError(
        `${this.paths.latest}: field "version": expected 2 (a checkpoint of an older version cannot be resumed)`,
      );
    const dir = join(this.paths.checkpointDir, state.snapshot);
    this.loadTrainable(join(dir, "trainable.safetensors"));
    const opt = loadSafetensorsFile(join(dir, "optimizer.safetensors"));
    this.optimizer.loadStateDict({ tensors: opt.tensors, metadata: opt.metadata });
    const lora = this.o.config.mode === "lora" ? this.o.model.model.loraAttachment : null;
    if (lora) {
      if (state.loraRandomState) {
        try {
          setLoraRandomState(lora.adapters.values(), state.loraRandomState);
        } catch (err) {
          throw new InputError(
            `${this.paths.latest}: field "loraRandomState": ${(err as Error).message} (different LoRA config?)`,
          );
        }
      } else {
        this.events.log(
          "warn",
          "checkpoint has no LoRA dropout state (older version): dropout masks will differ from an uninterrupted run",
        );
      }
    }
    return state;
  }

  async train(): Promise<RankerTrainSummary> {
    const c = this.o.config;
    const model = this.o.model.model;
    await mkdir(this.o.rankerDir, { recursive: true });
    const n = this.o.training.length;
    if (n === 0) throw new InputError("no training examples (every user needs at least two training items)");
    const totalSteps = this.totalSteps;
    const warmup = effectiveWarmup(c.warmupSteps, totalSteps);
    if (warmup < c.warmupSteps)
      this.events.log(
        "info",
        `ranker: warmup ${warmup} steps (${c.warmupSteps} scaled to a tenth of the ${totalSteps} planned steps)`,
      );
    let cursor = 0;
    let bestValidation: Metrics | null = null;
    let examplesSeen = 0;
    const resumed = this.o.resume ? await this.readCheckpoint() : null;
    if (resumed) {
      ({ cursor, bestValidation, examplesSeen } = resumed);
      this.events.log("info", `resuming ranker training at step ${resumed.loop.step}/${totalSteps}`);
    } else {
      await rm(this.paths.checkpointDir, { recursive: true, force: true });
    }
    let order = this.o.training.order(Math.floor(cursor / n));
    let orderEpoch = Math.floor(cursor / n);
    let lr = 0;
    let gradNorm = 0;
    let finalLoss: number | null = null;
    let windowExamples = 0;
    let windowStart = performance.now();
    model.train(true);
    const accumulation = c.batchSize / c.microBatchSize;

    const loop = new TrainingLoop<ValidationResult & { value: number }>(
      {
        valEvery: c.valEvery,
        patience: c.patience,
        logEvery: c.logEvery,
        maxSteps: totalSteps,
        logAtLastStep: true,
        stepKey: "step",
        task: "training ranker",
        metricPrefix: "ranker",
      },
      {
        step: (step) => {
          lr = linearWarmupLr(c.lr, step, warmup, totalSteps);
          this.optimizer.lr = lr;
          let stepLoss = 0;
          for (let m = 0; m < accumulation; m++) {
            const micro: TrainingExample[] = [];
            for (let k = 0; k < c.microBatchSize; k++) {
              const epoch = Math.floor(cursor / n);
              if (epoch !== orderEpoch) {
                order = this.o.training.order(epoch);
                orderEpoch = epoch;
              }
              micro.push(this.trainingExample(order[cursor % n]!, epoch));
              cursor++;
            }
            const tokens = micro.reduce((s, e) => s + e.labelMask.reduce((a, b) => a + b, 0), 0);
            // HF: mean over the micro-batch's label tokens, divided by the accumulation steps.
            const perToken = 1 / (tokens * accumulation);
            let microLoss = 0;
            for (const ex of micro) {
              const r = exampleLossAndBackward(model, ex, perToken);
              microLoss += r.loss * r.tokens;
            }
            stepLoss += microLoss / tokens / accumulation;
            examplesSeen += micro.length;
            windowExamples += micro.length;
          }
          if (!Number.isFinite(stepLoss)) return { loss: stepLoss };
          gradNorm = clipGradNorm(this.weights, c.maxGradNorm);
          this.optimizer.step();
          for (const w of this.weights) w.grad = null;
          finalLoss = stepLoss;
          this.o.onStep?.(step + 1, totalSteps);
          return { loss: stepLoss };
        },
        validate: async (step) => {
          const v = await this.validate(step);
          return { ...v, value: v.metrics[RANKER_BEST_METRIC]! };
        },
        saveBest: async () => {
          await mkdir(this.paths.bestDir, { recursive: true });
          this.saveTrainable(this.paths.best);
        },
        checkpoint: async (loopState) => {
          await this.writeCheckpoint({ loop: loopState, cursor, bestValidation, examplesSeen });
          // Throughput in the log is training only.
          windowStart = performance.now();
        },
        trainEntry: (loss, _state, elapsedSeconds) => {
          const secs = (performance.now() - windowStart) / 1000;
          const entry = {
            epoch: Math.round((cursor / n) * 1000) / 1000,
            loss,
            lr,
            gradNorm,
            examplesPerSecond: secs > 0 ? windowExamples / secs : null,
            elapsed: Math.round(elapsedSeconds * 10) / 10,
          };
          windowExamples = 0;
          windowStart = performance.now();
          return entry;
        },
        valEntry: (v, { improved }) => {
          if (improved) bestValidation = v.metrics;
          return { users: v.users, seconds: v.seconds, metrics: v.metrics, best: improved };
        },
        describeValidation: (v, improved, state) =>
          `validation at step ${state.step}: ${RANKER_BEST_METRIC} ${v.value.toFixed(4)} Recall@5 ${v.metrics["Recall@5"]!.toFixed(4)} (${v.users} users)${improved ? " — best so far" : ""}`,
      },
      { trainLog: this.paths.trainLog, resumeFrom: resumed?.loop ?? null, events: this.events },
    );
    const { state } = await loop.run();
    const step = state.step;
    const stoppedEarly = state.stoppedBy === "early-stopping";

    if (existsSync(this.paths.best)) this.loadTrainable(this.paths.best);
    model.eval();
    const artifacts = await this.exportArtifacts();
    const summary: RankerTrainSummary = {
      steps: step,
      totalSteps,
      examplesSeen,
      seconds: Math.round(state.elapsedSeconds * 10) / 10,
      stoppedEarly,
      bestStep: state.bestStep,
      bestMetric: state.bestValue,
      bestValidation,
      trainableParameters: this.trainableParameters,
      totalParameters:
        model.parameters().reduce((s, p) => s + p.size, 0) +
        model.loraParameters().reduce((s, [, p]) => s + p.size, 0),
      finalLoss,
      artifacts,
    };
    await writeJsonAtomic(this.paths.summary, summary);
    return summary;
  }

  /** Best weights in the formats the ranking backends load. */
  private async exportArtifacts(): Promise<Record<string, string>> {
    const { model, tokenizerMetadata, spec } = this.o.model;
    const out: Record<string, string> = {};
    if (this.o.config.mode === "lora") {
      await exportPeft(model, this.paths.adapterDir, { baseModel: spec });
      out.adapter = this.paths.adapterDir;
      try {
        exportLoraGguf(model, this.paths.adapterGguf);
        out.adapterGguf = this.paths.adapterGguf;
      } catch (err) {
        this.events.log("warn", `no GGUF adapter written: ${(err as Error).message}`);
      }
    } else if (tokenizerMetadata) {
      writeLlamaGguf(this.paths.modelGguf, model, { tokenizer: tokenizerMetadata, name: "llamarec-ranker" });
      out.model = this.paths.modelGguf;
    } else {
      this.events.log(
        "warn",
        "full model not written as GGUF: its tokenizer has no GGUF metadata (HF folder); best/ holds the weights",
      );
    }
    out.best = this.paths.best;
    return out;
  }
}
