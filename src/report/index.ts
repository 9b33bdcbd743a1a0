/**
 * Reports of run folders: the paper's tables, SVG charts, and what the numbers may be compared with.
 * `writeReport(runDirs, options)` is what `llamarec report` and the pipeline's last stage call.
 */
export {
  type ChartSize,
  metricBarsChart,
  type NamedCurve,
  PALETTE,
  renderSvg,
  type ShareBar,
  subsetShareChart,
  trainingCurvesChart,
} from "./charts.js";
export { retrieverColumns, retrieverTable } from "./columns.js";
export {
  describeRanker,
  describeRetriever,
  describeRun,
  MODEL_LABELS,
  modelLabel,
  type RankerStatement,
  rankerLabel,
} from "./describe.js";
export {
  bundledReferencePath,
  findReference,
  loadReference,
  parseReference,
  REFERENCE_VIEWS,
  type ReferenceEntry,
  type ReferenceNumbers,
  type ReferenceView,
  referencesFor,
  relativeDifference,
} from "./reference.js";
export {
  type CurvePoint,
  parseTrainLog,
  type RankerData,
  type RankerSplit,
  type RetrieverData,
  type RunData,
  readRunData,
  type SplitMetrics,
  type TrainingCurve,
} from "./run-data.js";
export {
  bestColumns,
  formatRelative,
  PAPER_ROWS,
  type PaperRow,
  type PaperTableOptions,
  paperTable,
  type TableColumn,
} from "./table.js";
export {
  type BuiltReport,
  buildReport,
  REPORT_VERSION,
  type ReportChart,
  type ReportJson,
  type ReportResult,
  type ReportTable,
  type WriteReportOptions,
  writeReport,
} from "./write.js";
