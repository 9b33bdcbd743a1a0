/** Public API of the retriever stage: models, training into a run folder, evaluation, candidates. */
export {
  type EvalSplit,
  encodeEvaluationRow,
  encodeTrainingBatch,
  evaluationHistory,
  evaluationUsers,
  TrainingBatches,
  trainingSequences,
} from "./batches.js";
export {
  type CandidateRecord,
  formatCandidates,
  labelCoverage,
  parseCandidates,
  readCandidates,
  writeCandidates,
} from "./candidates.js";
export { CHECKPOINT_FILE, loadCheckpoint, type StopReason, type TrainerState } from "./checkpoint.js";
export { retrieverSection } from "./config-section.js";
export {
  type EvaluationOptions,
  evaluateSplit,
  HISTORY_EXCLUSIONS,
  type HistoryExclusion,
  topItems,
} from "./evaluate.js";
export { describeModel, loadModel, type ModelDescription, saveModel } from "./model-file.js";
export { createRetriever, type RetrieverOptions, registerRetriever, retrieverNames } from "./registry.js";
export {
  type EvaluateRunResult,
  evaluateRetriever,
  evaluateRun,
  type RetrieverEvaluation,
} from "./run-evaluation.js";
export { officialDefaults, resolveTrainerConfig, type TrainerConfig } from "./train-config.js";
export { type TrainRetrieverOptions, type TrainRetrieverResult, trainRetriever } from "./trainer.js";
export type { SequenceBatch, SequentialRetriever, WeightLike } from "./types.js";
