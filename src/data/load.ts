import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { InputError, rejectUnknownKeys } from "../util/errors.js";
import { cacheKey, cachePath, DEFAULT_CACHE_DIR, readCacheEntry, writeCacheEntry } from "./cache.js";
import type { Dataset, DatasetStats } from "./dataset.js";
import { resolveInputPath } from "./io/lines.js";
import { type PreprocessReport, preprocess } from "./preprocess.js";
import type { RawData, ReadReport } from "./raw.js";
import { RowContext } from "./raw.js";
import { type AmazonPaths, readAmazon } from "./readers/amazon.js";
import { type GenericPaths, readGeneric } from "./readers/generic.js";
import { type MovieLensPaths, readMovieLens, resolveMovieLensPaths } from "./readers/movielens.js";
import { type RecBolePaths, readRecBole } from "./readers/recbole.js";

/** Datasets shipped with the package, by name. */
export const BUNDLED_DATASETS = ["ml-latest-small"] as const;
export type BundledDatasetName = (typeof BUNDLED_DATASETS)[number];

/**
 * What to load: a bundled dataset by name, or files in one of the four formats. `name` on a file spec is
 * the display name (default: the folder / file name).
 */
export type DatasetSpec =
  | { name: BundledDatasetName; format?: undefined }
  | ({ format: "movielens"; name?: string } & MovieLensPaths)
  | ({ format: "amazon"; name?: string } & AmazonPaths)
  | ({ format: "generic"; name?: string } & GenericPaths)
  | ({ format: "recbole"; name?: string } & RecBolePaths);

export interface LoadOptions {
  /** Keep interactions with rating >= minRating. Default: none (the official code's min_rating = 0). */
  minRating?: number;
  /** k-core threshold for users, default 5. */
  minUserCount?: number;
  /** k-core threshold for items, default 5. */
  minItemCount?: number;
  /** Throw a RowError on the first malformed row instead of skipping and counting. Default false. */
  strict?: boolean;
  /** Cache folder, default ".cache/llamarec/datasets" under the current directory. */
  cacheDir?: string;
  /** Neither read nor write the cache. */
  noCache?: boolean;
}

const LOAD_OPTION_KEYS: Record<keyof LoadOptions, true> = {
  minRating: true,
  minUserCount: true,
  minItemCount: true,
  strict: true,
  cacheDir: true,
  noCache: true,
};

export interface LoadReport extends ReadReport {
  /** Format actually read ("movielens", "amazon", "generic", "recbole"). */
  format: string;
  /** Counts after each filter, k-core iterations, the options used. */
  preprocess: PreprocessReport;
  cacheHit: boolean;
  /** Cache key (hash of the source files and options); null with noCache. */
  cacheKey: string | null;
  /** Cache file path; null with noCache. */
  cachePath: string | null;
  /** Wall-clock milliseconds of this call. */
  elapsedMs: number;
  /** Milliseconds per phase of this call (hash = cache key; read/preprocess/cacheWrite are 0 on a hit). */
  timings: {
    hashMs: number;
    cacheReadMs: number;
    readMs: number;
    preprocessMs: number;
    cacheWriteMs: number;
  };
}

export interface LoadResult {
  dataset: Dataset;
  stats: DatasetStats;
  report: LoadReport;
}

/** The package root (the folder with llamarec's package.json), from src/ under vitest or dist/ after build. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, "package.json");
    if (existsSync(pj)) {
      try {
        if (JSON.parse(readFileSync(pj, "utf8")).name === "llamarec") return dir;
      } catch {
        // keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot locate the llamarec package root");
    dir = up;
  }
}

/** Folder of a bundled dataset, e.g. <package>/data/ml-latest-small. */
export function bundledDatasetDir(name: BundledDatasetName): string {
  return join(packageRoot(), "data", name);
}

type FileSpec = Exclude<DatasetSpec, { format?: undefined }>;

function toFileSpec(spec: DatasetSpec): FileSpec {
  if (spec.format === undefined) {
    if (!(BUNDLED_DATASETS as readonly string[]).includes(spec.name)) {
      throw new InputError(
        `unknown dataset "${spec.name}"; bundled: ${BUNDLED_DATASETS.join(", ")}; ` +
          `or give a format (movielens, amazon, generic, recbole) and file paths`,
      );
    }
    return { format: "movielens", name: spec.name, dir: bundledDatasetDir(spec.name), variant: "csv" };
  }
  return spec;
}

/** The source files a spec reads (resolved, .gz fallback applied), in a fixed order. */
export function sourceFilesOf(spec: DatasetSpec): string[] {
  const s = toFileSpec(spec);
  switch (s.format) {
    case "movielens": {
      const r = resolveMovieLensPaths(s);
      return [r.ratings, r.movies];
    }
    case "amazon":
      return [s.ratings, s.reviews, s.meta].filter((p): p is string => !!p).map(resolveInputPath);
    case "generic":
      return [s.interactions, s.items].map(resolveInputPath);
    case "recbole":
      return [s.inter, s.item].map(resolveInputPath);
    default:
      throw new InputError(`unknown dataset format "${(s as { format: string }).format}"`);
  }
}

function defaultName(s: FileSpec, files: string[]): string {
  if (s.name) return s.name;
  if (s.format === "movielens" && s.dir) return basename(resolve(s.dir));
  if (s.format === "amazon") {
    const m = /(?:ratings|reviews)_(.+?)(?:_5)?\.(?:csv|json)/.exec(basename(s.ratings ?? s.reviews ?? ""));
    if (m) return m[1]!;
  }
  return basename(dirname(resolve(files[0]!)));
}

async function readSpec(s: FileSpec, ctx: RowContext): Promise<RawData> {
  switch (s.format) {
    case "movielens":
      return readMovieLens(s, ctx);
    case "amazon":
      return readAmazon(s, ctx);
    case "generic":
      return readGeneric(s, ctx);
    case "recbole":
      return readRecBole(s, ctx);
  }
}

/** Parsing-relevant parts of a spec (not paths: those enter the key through the files' content). */
function specFingerprint(s: FileSpec): unknown {
  switch (s.format) {
    case "movielens":
      return { format: s.format, variant: resolveMovieLensPaths(s).variant };
    case "amazon":
      return { format: s.format, ratings: !!s.ratings, reviews: !!s.reviews };
    case "generic":
      return {
        format: s.format,
        columns: s.columns ?? {},
        delimiter: s.delimiter ?? null,
        encoding: s.encoding ?? "utf8",
      };
    case "recbole":
      return { format: s.format, columns: s.columns ?? {} };
  }
}

interface CacheExtra {
  read: ReadReport;
  preprocess: PreprocessReport;
  format: string;
}

/** How a dataset was loaded: what a run folder records so that resume, eval and serve load the same split. */
export interface DatasetSource {
  spec: DatasetSpec;
  load: LoadOptions;
}

const sources = new WeakMap<Dataset, DatasetSource>();

/** The spec and options `loadDataset` loaded this dataset object with; undefined for datasets built otherwise. */
export function datasetSource(dataset: Dataset): DatasetSource | undefined {
  return sources.get(dataset);
}

/**
 * Loads a dataset: reads the files, preprocesses them (rating filter, title filter, k-core, dense ids,
 * leave-one-out) and caches the result on disk, keyed by the files' content and the options. The returned
 * dataset remembers how it was loaded (`datasetSource`), so a run trained on it records that by itself.
 */
export async function loadDataset(spec: DatasetSpec, options: LoadOptions = {}): Promise<LoadResult> {
  rejectUnknownKeys(options, LOAD_OPTION_KEYS, "dataset load options");
  const result = await loadDatasetFrom(spec, options);
  const load = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as LoadOptions;
  if (load.cacheDir !== undefined) load.cacheDir = resolve(load.cacheDir);
  sources.set(result.dataset, { spec: absoluteSpec(spec), load });
  return result;
}

/** The spec with its file and folder paths absolute (a run folder's record must not depend on the cwd). */
function absoluteSpec(spec: DatasetSpec): DatasetSpec {
  const out: Record<string, unknown> = { ...spec };
  for (const key of ["dir", "ratings", "movies", "reviews", "meta", "interactions", "items", "inter", "item"])
    if (typeof out[key] === "string") out[key] = resolve(out[key] as string);
  return out as DatasetSpec;
}

async function loadDatasetFrom(spec: DatasetSpec, options: LoadOptions): Promise<LoadResult> {
  const t0 = performance.now();
  const s = toFileSpec(spec);
  const files = sourceFilesOf(s);
  const name = defaultName(s, files);
  const pre = {
    minRating: options.minRating,
    minUserCount: options.minUserCount ?? 5,
    minItemCount: options.minItemCount ?? 5,
  };
  let key: string | null = null;
  let path: string | null = null;
  const timings = { hashMs: 0, cacheReadMs: 0, readMs: 0, preprocessMs: 0, cacheWriteMs: 0 };
  let mark = performance.now();
  const lap = (): number => {
    const now = performance.now();
    const d = now - mark;
    mark = now;
    return d;
  };
  if (!options.noCache) {
    key = await cacheKey(files, {
      spec: specFingerprint(s),
      minRating: pre.minRating ?? null,
      minUserCount: pre.minUserCount,
      minItemCount: pre.minItemCount,
      strict: !!options.strict,
    });
    path = cachePath(resolve(options.cacheDir ?? DEFAULT_CACHE_DIR), key);
    timings.hashMs = lap();
    const hit = readCacheEntry<CacheExtra>(path);
    timings.cacheReadMs = lap();
    if (hit) {
      const dataset: Dataset = { ...hit.dataset, name };
      return {
        dataset,
        stats: hit.stats,
        report: {
          ...hit.extra.read,
          sourceFiles: files,
          format: hit.extra.format,
          preprocess: hit.extra.preprocess,
          cacheHit: true,
          cacheKey: key,
          cachePath: path,
          elapsedMs: performance.now() - t0,
          timings,
        },
      };
    }
  }
  const ctx = new RowContext(!!options.strict);
  const raw = await readSpec(s, ctx);
  timings.readMs = lap();
  const result = preprocess(raw, { ...pre, name });
  timings.preprocessMs = lap();
  const read = { ...ctx.report, sourceFiles: files };
  if (path) {
    await writeCacheEntry<CacheExtra>(path, {
      dataset: result.dataset,
      stats: result.stats,
      extra: { read, preprocess: result.report, format: s.format },
    });
    timings.cacheWriteMs = lap();
  }
  return {
    dataset: result.dataset,
    stats: result.stats,
    report: {
      ...read,
      format: s.format,
      preprocess: result.report,
      cacheHit: false,
      cacheKey: key,
      cachePath: path,
      elapsedMs: performance.now() - t0,
      timings,
    },
  };
}
