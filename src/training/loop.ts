/**
 * The one resumable training loop, shared by the retriever trainer (src/retrievers/trainer.ts) and the
 * ranker trainer (src/ranker/training/trainer.ts). It owns what every training run repeats:
 * - the step counter and the stop rules: a step limit, the trainer's data running out, early stopping
 *   after `patience` validations without a strictly better value;
 * - validation cadence (every `valEvery` steps, optionally once before the first step, and once after the
 *   last step when it did not fall on the cadence) and model selection (the trainer keeps the best weights
 *   when told the value improved);
 * - the train log (JSON lines: a mean-loss line every `logEvery` steps, a line per validation), trimmed back
 *   to the checkpoint on resume so a resumed log reads like an uninterrupted one;
 * - a checkpoint after every validation and at the end: the trainer writes its tensors and this loop's
 *   state in one atomic commit, and hands the state back to continue exactly where it stopped;
 * - wall time summed over sessions, progress and metric events.
 * The trainer supplies the step, the validation, the best-weights snapshot and the checkpoint writer.
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { whileHeld } from "../tensor/kernels/hold.js";
import { writeFileAtomic } from "../util/atomic.js";
import { type Events, NO_EVENTS, startProgress } from "../util/events.js";

/** max-steps: the step limit; exhausted: the trainer has no more data (e.g. its epoch limit). */
export type LoopStopReason = "early-stopping" | "max-steps" | "exhausted";

/** Everything of the loop a checkpoint must hold (JSON). */
export interface LoopState {
  /** Optimizer steps done. */
  step: number;
  validations: number;
  /** Best validation value so far (null before the first validation). */
  bestValue: number | null;
  bestStep: number | null;
  /** Validations since the last improvement. */
  patienceCounter: number;
  /** Wall time before this checkpoint, summed over resumed sessions (validation included). */
  elapsedSeconds: number;
  /** Loss summed since the last train-log line. */
  lossSum: number;
  lossCount: number;
  /** Set once training ended; a resumed run then only redoes what follows training. */
  stoppedBy: LoopStopReason | null;
}

export function initialLoopState(): LoopState {
  return {
    step: 0,
    validations: 0,
    bestValue: null,
    bestStep: null,
    patienceCounter: 0,
    elapsedSeconds: 0,
    lossSum: 0,
    lossCount: 0,
    stoppedBy: null,
  };
}

export interface LoopConfig {
  /** Validate (and checkpoint) every this many steps. */
  valEvery: number;
  /** Validations without a strictly better value before stopping. */
  patience: number;
  /** Write a train-log line every this many steps. */
  logEvery: number;
  /** Stop after this many steps (null: only early stopping or exhausted data). */
  maxSteps: number | null;
  /** Validate once before the first step (the official retriever trainer does). */
  validateAtStart?: boolean;
  /** Also write a train-log line at the last step (`maxSteps`) when it is off the `logEvery` cadence. */
  logAtLastStep?: boolean;
  /** Key of the step number in train-log lines ("iteration" for the retriever, "step" for the ranker). */
  stepKey: string;
  /** The progress task's name, e.g. "training retriever". */
  task: string;
  /** Prefix of metric events, e.g. "retriever". */
  metricPrefix: string;
}

export interface StepOutcome {
  /** The step's training loss (must be finite). */
  loss: number;
}

export interface ValidationOutcome {
  /** The model-selection value (higher is better). */
  value: number;
  /** Every metric computed (emitted as metric events). */
  metrics: Record<string, number>;
}

export interface LoopHooks<V extends ValidationOutcome> {
  /** One optimizer step at step index `step` (0-based: the steps done before it). */
  step(step: number): StepOutcome | Promise<StepOutcome>;
  /** True when the trainer's data has run out (checked before each step). */
  exhausted?(): boolean;
  validate(step: number): V | Promise<V>;
  /** The value just improved: keep the current weights as the best ones. */
  saveBest(step: number): void | Promise<void>;
  /** Write the trainer's resume point with this loop state, atomically. */
  checkpoint(state: LoopState): void | Promise<void>;
  /** The fields of a train-log line besides type and step, from the window's mean loss. */
  trainEntry(meanLoss: number, state: LoopState, elapsedSeconds: number): Record<string, unknown>;
  /** The fields of a validation line besides type and step. */
  valEntry(
    outcome: V,
    info: { improved: boolean; state: LoopState; elapsedSeconds: number },
  ): Record<string, unknown>;
  /** A human line describing a validation (logged at info level). */
  describeValidation?(outcome: V, improved: boolean, state: LoopState): string;
  /** Called after every step (tests simulate kills here). */
  afterStep?(step: number): void;
}

export interface LoopOptions {
  trainLog: string;
  /** The loop state of the checkpoint being resumed; absent for a fresh run. */
  resumeFrom?: LoopState | null;
  events?: Events;
  now?: () => number;
}

export interface LoopResult {
  state: LoopState;
  /** Steps done in this session and their wall time (validation included). */
  sessionSteps: number;
  sessionSeconds: number;
}

export class TrainingLoop<V extends ValidationOutcome> {
  private state: LoopState;
  private readonly events: Events;
  private readonly now: () => number;
  private sessionStart = 0;

  constructor(
    private readonly config: LoopConfig,
    private readonly hooks: LoopHooks<V>,
    private readonly options: LoopOptions,
  ) {
    for (const k of ["valEvery", "patience", "logEvery"] as const) {
      const v = config[k];
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${k} must be a positive integer, got ${v}`);
    }
    this.state = options.resumeFrom ? { ...options.resumeFrom } : initialLoopState();
    this.events = options.events ?? NO_EVENTS;
    this.now = options.now ?? Date.now;
  }

  /** Wall time so far, summed over sessions. */
  elapsed(): number {
    return this.state.elapsedSeconds + (this.now() - this.sessionStart) / 1000;
  }

  private appendLog(entry: Record<string, unknown>): void {
    appendFileSync(this.options.trainLog, `${JSON.stringify(entry)}\n`);
  }

  private snapshot(): LoopState {
    return { ...this.state, elapsedSeconds: this.elapsed() };
  }

  private async validate(): Promise<boolean> {
    const s = this.state;
    const outcome = await this.hooks.validate(s.step);
    s.validations++;
    const improved = s.bestValue === null || outcome.value > s.bestValue;
    if (improved) {
      s.bestValue = outcome.value;
      s.bestStep = s.step;
      s.patienceCounter = 0;
      await this.hooks.saveBest(s.step);
    } else {
      s.patienceCounter++;
    }
    const elapsedSeconds = this.elapsed();
    this.appendLog({
      type: "val",
      [this.config.stepKey]: s.step,
      ...this.hooks.valEntry(outcome, { improved, state: s, elapsedSeconds }),
    });
    for (const [name, value] of Object.entries(outcome.metrics))
      this.events.metric(`${this.config.metricPrefix}/val/${name}`, value, { step: s.step, split: "val" });
    if (this.hooks.describeValidation)
      this.events.log("info", this.hooks.describeValidation(outcome, improved, s));
    await this.hooks.checkpoint(this.snapshot());
    return s.patienceCounter >= this.config.patience;
  }

  async run(): Promise<LoopResult> {
    const c = this.config;
    const s = this.state;
    this.sessionStart = this.now();
    const resumed = this.options.resumeFrom != null;
    if (resumed) {
      await trimTrainLog(this.options.trainLog, c.stepKey, s.step);
      if (s.stoppedBy === null) {
        // Killed after the deciding validation's checkpoint but before the stop was recorded.
        if (s.validations > 0 && s.patienceCounter >= c.patience) s.stoppedBy = "early-stopping";
        else if (c.maxSteps !== null && s.step >= c.maxSteps) s.stoppedBy = "max-steps";
      }
    } else {
      await writeFileAtomic(this.options.trainLog, "");
      if (c.validateAtStart && (await this.validate())) s.stoppedBy = "early-stopping";
    }
    const startStep = s.step;
    const bar =
      s.stoppedBy === null ? startProgress(this.events, c.task, c.maxSteps ?? undefined, s.step) : null;
    while (s.stoppedBy === null) {
      // Give the event loop a turn: signal handlers and timers run between steps.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.hooks.exhausted?.()) {
        s.stoppedBy = "exhausted";
        break;
      }
      // One hold window per step: its kernel calls find the helper thread awake (src/tensor/kernels/hold.ts).
      const { loss } = await whileHeld(() => this.hooks.step(s.step));
      if (!Number.isFinite(loss))
        throw new Error(`${c.task}: loss ${loss} at step ${s.step + 1} (training diverged)`);
      s.step++;
      s.lossSum += loss;
      s.lossCount++;
      const last = c.maxSteps !== null && s.step >= c.maxSteps;
      if (s.step % c.logEvery === 0 || (last && c.logAtLastStep)) {
        const mean = s.lossSum / s.lossCount;
        this.appendLog({
          type: "train",
          [c.stepKey]: s.step,
          ...this.hooks.trainEntry(mean, s, this.elapsed()),
        });
        this.events.metric(`${c.metricPrefix}/train/loss`, mean, { step: s.step });
        s.lossSum = 0;
        s.lossCount = 0;
      }
      bar?.tick(1, `loss ${loss.toFixed(3)}`);
      this.hooks.afterStep?.(s.step);
      const atValidation = s.step % c.valEvery === 0;
      if (atValidation && (await this.validate())) s.stoppedBy = "early-stopping";
      else if (last) {
        // A last validation so the final weights take part in model selection.
        if (!atValidation) await this.validate();
        s.stoppedBy = "max-steps";
      }
    }
    bar?.done();
    const sessionSeconds = (this.now() - this.sessionStart) / 1000;
    // Record the end, so a resume after a kill in what follows training skips straight to it.
    await this.hooks.checkpoint(this.snapshot());
    return { state: this.snapshot(), sessionSteps: s.step - startStep, sessionSeconds };
  }
}

/** Keeps the log lines up to `step` (a torn last line from a kill is dropped too). */
export async function trimTrainLog(path: string, stepKey: string, step: number): Promise<void> {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => {
      if (line.trim() === "") return false;
      try {
        const at = (JSON.parse(line) as Record<string, unknown>)[stepKey];
        return typeof at === "number" && at <= step;
      } catch {
        return false;
      }
    });
  await writeFileAtomic(path, kept.length === 0 ? "" : `${kept.join("\n")}\n`);
}
