/** Public API of the data layer: readers, preprocessing, cache, synthetic data, export. */

export { InputError, RowError } from "../util/errors.js";
export { CACHE_FORMAT_VERSION, DEFAULT_CACHE_DIR } from "./cache.js";
export type { Dataset, DatasetStats } from "./dataset.js";
export { type ExportGenericOptions, exportGeneric } from "./export.js";
export {
  BUNDLED_DATASETS,
  type BundledDatasetName,
  bundledDatasetDir,
  type DatasetSource,
  type DatasetSpec,
  datasetSource,
  type LoadOptions,
  type LoadReport,
  type LoadResult,
  loadDataset,
  packageRoot,
  sourceFilesOf,
} from "./load.js";
export {
  computeStats,
  type FilterStage,
  type PreprocessOptions,
  type PreprocessReport,
  type PreprocessResult,
  preprocess,
} from "./preprocess.js";
export { PyLiteralError, type PyValue, parsePythonLiteral } from "./pyliteral.js";
export { InteractionLog, type RawData, type RawInteraction, type ReadReport, RowContext } from "./raw.js";
export { type AmazonPaths, readAmazon } from "./readers/amazon.js";
export {
  DEFAULT_GENERIC_COLUMNS,
  type GenericColumns,
  type GenericPaths,
  readGeneric,
} from "./readers/generic.js";
export { type MovieLensPaths, type MovieLensVariant, readMovieLens } from "./readers/movielens.js";
export { type RecBoleColumns, type RecBolePaths, readRecBole } from "./readers/recbole.js";
export { formatDensity, formatStatsTable, type StatsRow } from "./stats.js";
export {
  generateSynthetic,
  mulberry32,
  type SyntheticData,
  type SyntheticOptions,
  syntheticDataset,
  writeSyntheticCsv,
} from "./synthetic.js";
export { cleanMovieLensTitle } from "./titles.js";
