/**
 * The resume point of a training run, as ONE safetensors file written by temp + rename: current weights
 * ("model."), best weights ("best."), optimizer moments ("optim.") and the trainer's counters in the
 * metadata. One file means a kill at any moment leaves either the previous complete checkpoint or the new
 * complete one — never a mix of two iterations.
 */
import { existsSync } from "node:fs";
import type { OptimizerState } from "../tensor/optim/adamw.js";
import { loadSafetensorsFile, type NamedArray, saveSafetensors } from "../tensor/safetensors.js";
import { InputError } from "../util/errors.js";

export const CHECKPOINT_FILE = "checkpoint.safetensors";

/** Everything the training loop needs, besides tensors, to continue exactly where it stopped. */
export interface TrainerState {
  /** Optimizer steps done. */
  iteration: number;
  /** Epoch and batch index of the next batch to train on. */
  epoch: number;
  batchInEpoch: number;
  validations: number;
  /** Best validation value so far (null before the first validation). */
  bestValue: number | null;
  bestIteration: number;
  /** Validations since the last improvement (official BestModelLogger.patience_counter). */
  patienceCounter: number;
  /** Wall time spent training before this checkpoint, summed over resumed sessions. */
  elapsedSeconds: number;
  /** Loss accumulated since the last train-log line. */
  lossSum: number;
  lossCount: number;
  /** The model's dropout stream (null when the model has no randomness). */
  modelRandomState: number[] | null;
  /** Set once training ended; a resumed run then only redoes the final evaluation. */
  stoppedBy: StopReason | null;
}

export type StopReason = "early-stopping" | "max-iterations" | "max-epochs";

export interface Checkpoint {
  state: TrainerState;
  weights: Map<string, NamedArray>;
  best: Map<string, NamedArray>;
  optimizer: OptimizerState;
  /** JSON of the resolved run configuration: a checkpoint only resumes the run it belongs to. */
  configKey: string;
}

const FORMAT = "llamarec-retriever-checkpoint/1";

export function saveCheckpoint(path: string, ckpt: Checkpoint): void {
  const tensors = new Map<string, NamedArray>();
  for (const [k, v] of ckpt.weights) tensors.set(`model.${k}`, v);
  for (const [k, v] of ckpt.best) tensors.set(`best.${k}`, v);
  for (const [k, v] of ckpt.optimizer.tensors) tensors.set(`optim.${k}`, v);
  const metadata: Record<string, string> = {
    format: FORMAT,
    state: JSON.stringify(ckpt.state),
    config: ckpt.configKey,
  };
  for (const [k, v] of Object.entries(ckpt.optimizer.metadata)) metadata[`optim.${k}`] = v;
  saveSafetensors(path, tensors, metadata);
}

export function loadCheckpoint(path: string): Checkpoint {
  if (!existsSync(path)) throw new InputError(`no checkpoint at ${path}`);
  const file = loadSafetensorsFile(path);
  if (file.metadata.format !== FORMAT) {
    throw new InputError(
      `${path}: not a retriever checkpoint (format ${JSON.stringify(file.metadata.format)})`,
    );
  }
  const weights = new Map<string, NamedArray>();
  const best = new Map<string, NamedArray>();
  const optimTensors = new Map<string, NamedArray>();
  for (const [k, v] of file.tensors) {
    if (k.startsWith("model.")) weights.set(k.slice(6), v);
    else if (k.startsWith("best.")) best.set(k.slice(5), v);
    else if (k.startsWith("optim.")) optimTensors.set(k.slice(6), v);
    else throw new InputError(`${path}: unexpected tensor "${k}"`);
  }
  const optimMeta: Record<string, string> = {};
  for (const [k, v] of Object.entries(file.metadata)) if (k.startsWith("optim.")) optimMeta[k.slice(6)] = v;
  let state: TrainerState;
  try {
    state = JSON.parse(file.metadata.state ?? "") as TrainerState;
  } catch {
    throw new InputError(`${path}: trainer state is not valid JSON`);
  }
  if (typeof state.iteration !== "number" || typeof state.epoch !== "number") {
    throw new InputError(`${path}: trainer state lacks iteration/epoch`);
  }
  return {
    state,
    weights,
    best,
    optimizer: { tensors: optimTensors, metadata: optimMeta },
    configKey: file.metadata.config ?? "",
  };
}
