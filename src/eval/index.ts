export { formatMetricsTable, type MetricsRow } from "./format.js";
export {
  type BatchScorer,
  EXCLUDE_MODES,
  type ExcludeMode,
  excludedItems,
  type FullRankingOptions,
  inputSequence,
  labelOf,
  rankUsers,
  type Split,
  userRank,
} from "./full-ranking.js";
export {
  checkKs,
  DEFAULT_KS,
  METRIC_NAMES,
  type MetricName,
  type Metrics,
  metricKey,
  metricsFromRanks,
  type RankLike,
  userMetric,
} from "./metrics.js";
export {
  type LabelStanding,
  labelStanding,
  NaNScoreError,
  rankFromStanding,
  rankOfLabel,
  TIE_MODES,
  type TieMode,
} from "./rank.js";
export {
  type CombinedRanks,
  combineRanks,
  DEFAULT_NUM_CANDIDATES,
  metricsForUsers,
  retrievalSubset,
  type TwoStageReport,
  twoStageReport,
} from "./two-stage.js";
export {
  formatUserRanks,
  parseUserRanks,
  readUserRanks,
  type UserRank,
  writeUserRanks,
} from "./user-ranks.js";
