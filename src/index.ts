/**
 * llamarec as a library: `import { … } from "llamarec"`. The public contract for TypeScript users; the
 * command line and the HTTP server are built on the same functions. In data-flow order:
 *
 *   data        loadDataset({ name: "ml-latest-small" }) → Dataset (dense ids, leave-one-out split, titles)
 *   retriever   trainRetriever({ dataset, model: "lru", runDir }) → a run folder; loadRetriever(runDir);
 *               retrieveCandidates(retriever, history) → top-20 items
 *   ranker      openRanker({ backend: "engine" | "llamacpp" | "remote", model }) → ranker.rank(dataset,
 *               history, candidates); trainRankerRun / rankRun for whole run folders
 *   evaluation  metricsFromRanks(ranks, ks), twoStageReport(retrieverRanks, rankerRanks)
 *   report      writeReport(runDirs, options) → report.md, report.json, SVG charts
 *   pipeline    runPipeline({ runDir, settings: profileSettings("quick") }) → every stage, resumable
 *   server      createServer(await loadServing({ runDir })) → the Fastify app of `llamarec serve`
 *
 * Library functions never print: long ones take an `events` object (log, progress, metric, artifact).
 * Bad input throws InputError (message names the file, line or field). See examples/library.ts and
 * examples/serve.ts.
 */

// ── task-level helpers ────────────────────────────────────────────────────────────────────────────
export {
  type CandidateOptions,
  type LoadedRetriever,
  loadRetriever,
  type OpenRankerOptions,
  openRanker,
  openRunRanker,
  type Ranker,
  retrieveCandidates,
  type ScoredItems,
} from "./api.js";

// ── data ──────────────────────────────────────────────────────────────────────────────────────────
export {
  BUNDLED_DATASETS,
  type BundledDatasetName,
  computeStats,
  type Dataset,
  type DatasetSpec,
  type DatasetStats,
  formatStatsTable,
  generateSynthetic,
  type LoadOptions,
  type LoadResult,
  loadDataset,
  type SyntheticOptions,
  syntheticDataset,
} from "./data/index.js";

// ── evaluation ────────────────────────────────────────────────────────────────────────────────────
export {
  combineRanks,
  DEFAULT_KS,
  DEFAULT_NUM_CANDIDATES,
  formatMetricsTable,
  METRIC_NAMES,
  type MetricName,
  type Metrics,
  metricKey,
  metricsFromRanks,
  rankOfLabel,
  type TwoStageReport,
  twoStageReport,
  type UserRank,
  userMetric,
} from "./eval/index.js";
// ── ranker: the bundled tiny model, backends, prompt, verbalizer, ranking runs ─────────────────────────
export { bundledTinyGguf } from "./llm/bundled.js";
// ── pipeline: every stage into one run folder (the `llamarec run` command) ─────────────────────────────
export {
  type PipelineResult,
  type RunPipelineOptions,
  runPipeline,
  STAGES,
  type StageName,
  type StageSummary,
} from "./pipeline/run.js";
export {
  type PipelineSettings,
  PROFILES,
  type ProfileName,
  paperProfile,
  profileSettings,
  quickProfile,
} from "./pipeline/settings.js";
export type { RankerBackend } from "./ranker/backend.js";
export {
  BACKEND_KINDS,
  type BackendKind,
  type OpenRankerBackendOptions,
  openRankerBackend,
} from "./ranker/backends/open.js";
export { PAPER_PROMPT, PromptBuilder, type PromptConfig, type RankingExample } from "./ranker/prompt.js";
export { type RankOptions, type RankResult, rankCandidates } from "./ranker/rank.js";
export { type RankRunOptions, rankRun } from "./ranker/rank-run.js";
export {
  type TrainRankerRunOptions,
  type TrainRankerRunResult,
  trainRankerRun,
} from "./ranker/training/ranker-run.js";
export { type LetterIdMode, Verbalizer } from "./ranker/verbalizer.js";
// ── report ────────────────────────────────────────────────────────────────────────────────────────
export {
  buildReport,
  loadReference,
  PAPER_ROWS,
  paperTable,
  type ReferenceNumbers,
  type ReportJson,
  type ReportResult,
  readRunData,
  retrieverTable,
  type TableColumn,
  type WriteReportOptions,
  writeReport,
} from "./report/index.js";
// ── retrievers ────────────────────────────────────────────────────────────────────────────────────
export {
  type CandidateRecord,
  createRetriever,
  evaluateRun,
  type RetrieverOptions,
  readCandidates,
  retrieverNames,
  type SequentialRetriever,
  type TrainerConfig,
  type TrainRetrieverOptions,
  type TrainRetrieverResult,
  trainRetriever,
} from "./retrievers/index.js";
// ── run folders ───────────────────────────────────────────────────────────────────────────────────
export {
  loadRunDataset,
  type RunConfig,
  type RunPaths,
  readRunConfig,
  resolveRunDir,
  runPaths,
} from "./run/index.js";
// ── serving: the HTTP server of `llamarec serve` over a run folder ──────────────────────────────────
export { createServer, type LlamarecServer, type ServerOptions, type ServingServices } from "./server/app.js";
export { type LoadedServing, type LoadServingOptions, loadServing } from "./server/load.js";
export type { RankerKind, RankerSetupOptions } from "./server/ranker-setup.js";
// ── errors and events ─────────────────────────────────────────────────────────────────────────────
export { InputError, RowError } from "./util/errors.js";
export {
  type EventLevel,
  type Events,
  type MetricContext,
  makeEvents,
  NO_EVENTS,
  type ProgressEvent,
} from "./util/events.js";
