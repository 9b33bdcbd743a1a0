/**
 * The dataset flags shared by every command that reads data, and the translation of the `data` config
 * section into the data layer's DatasetSpec + LoadOptions (with errors that name the flag / field).
 */
import type { Command } from "commander";
import { DATA_FORMATS, type DataConfig } from "../config/core.js";
import type { DatasetSpec, LoadOptions } from "../data/index.js";
import { InputError } from "../util/errors.js";
import { parseIntArg, parseNumberArg } from "./options.js";
import type { ConfigFlags } from "./registry.js";

export function addDataOptions(cmd: Command): Command {
  return cmd
    .option("--dataset <name>", "a bundled dataset: ml-latest-small")
    .option("--format <format>", `read files in this format: ${DATA_FORMATS.join(", ")}`)
    .option("--name <name>", "display name of the dataset (default: from the folder or file name)")
    .option(
      "--dir <folder>",
      "movielens: folder with ratings.csv+movies.csv, u.data+u.item or ratings.dat+movies.dat",
    )
    .option(
      "--ratings <file>",
      "interactions: movielens ratings, amazon ratings CSV, generic interactions, recbole .inter",
    )
    .option("--reviews <file>", "amazon: reviews_<Category>_5.json(.gz) instead of --ratings")
    .option("--items <file>", "item titles: movielens movies, amazon meta, generic items, recbole .item")
    .option("--variant <layout>", "movielens file layout: csv, 100k, 1m (default: detected)")
    .option("--user-col <name>", "generic/recbole: user id column")
    .option("--item-col <name>", "generic/recbole: item id column of the interactions")
    .option("--time-col <name>", "generic/recbole: timestamp column")
    .option("--rating-col <name>", "generic/recbole: rating column")
    .option("--item-id-col <name>", "generic: item id column of the items file (default: --item-col)")
    .option("--title-col <name>", "generic/recbole: title column of the items file")
    .option("--delimiter <char>", "generic: field delimiter (default from the extension; \\t for tab)")
    .option("--encoding <enc>", "generic: utf8 or latin1")
    .option("--min-rating <x>", "keep interactions rated >= x (default: no rating filter)", parseNumberArg)
    .option("--min-uc <n>", "k-core: drop users with fewer interactions (default 5)", parseIntArg)
    .option("--min-sc <n>", "k-core: drop items with fewer interactions (default 5)", parseIntArg)
    .option("--strict", "stop at the first malformed row instead of skipping and counting it")
    .option("--cache-dir <folder>", "prepared-dataset cache (default .cache/llamarec/datasets)")
    .option("--no-cache", "neither read nor write the cache");
}

export const DATA_CONFIG_FLAGS: ConfigFlags = {
  dataset: "data.dataset",
  format: "data.format",
  name: "data.name",
  dir: "data.dir",
  ratings: "data.ratings",
  reviews: "data.reviews",
  items: "data.items",
  variant: "data.variant",
  userCol: "data.columns.user",
  itemCol: "data.columns.item",
  timeCol: "data.columns.timestamp",
  ratingCol: "data.columns.rating",
  itemIdCol: "data.columns.itemId",
  titleCol: "data.columns.title",
  delimiter: "data.delimiter",
  encoding: "data.encoding",
  minRating: "data.minRating",
  minUc: "data.minUc",
  minSc: "data.minSc",
  strict: "data.strict",
  cacheDir: "data.cacheDir",
  cache: "data.cache",
};

/** Field -> how to name it in messages ("--ratings / data.ratings"). */
const label = (field: string, flag: string) => `--${flag} (data.${field})`;

const FILE_FIELDS: Record<NonNullable<DataConfig["format"]>, readonly (keyof DataConfig)[]> = {
  movielens: ["dir", "ratings", "items", "variant"],
  amazon: ["ratings", "reviews", "items"],
  generic: ["ratings", "items", "columns", "delimiter", "encoding"],
  recbole: ["ratings", "items", "columns"],
};
const FLAG_OF: Partial<Record<keyof DataConfig, string>> = {
  dir: "dir",
  ratings: "ratings",
  reviews: "reviews",
  items: "items",
  variant: "variant",
  columns: "user-col/--item-col/...",
  delimiter: "delimiter",
  encoding: "encoding",
};

export function datasetSpecFrom(data: DataConfig): DatasetSpec {
  const given = (Object.keys(FLAG_OF) as (keyof DataConfig)[]).filter((k) => data[k] !== undefined);
  if (data.dataset !== undefined) {
    if (data.format !== undefined) {
      throw new InputError(`give either --dataset (data.dataset) or --format (data.format), not both`);
    }
    if (given.length > 0) {
      throw new InputError(
        `${label(given[0]!, FLAG_OF[given[0]!]!)} is only used with --format, not --dataset`,
      );
    }
    return { name: data.dataset as "ml-latest-small" };
  }
  if (data.format === undefined) {
    throw new InputError(
      "no dataset: give --dataset ml-latest-small, or --format with its files (see --help)",
    );
  }
  const format = data.format;
  const unused = given.filter((k) => !FILE_FIELDS[format].includes(k));
  if (unused.length > 0) {
    throw new InputError(`${label(unused[0]!, FLAG_OF[unused[0]!]!)} is not used by --format ${format}`);
  }
  const need = (field: "ratings" | "items", flag: string): string => {
    const v = data[field];
    if (v === undefined) throw new InputError(`--format ${format} needs ${label(field, flag)}`);
    return v;
  };
  const name = data.name;
  switch (format) {
    case "movielens":
      if (data.dir === undefined && (data.ratings === undefined || data.items === undefined)) {
        throw new InputError("--format movielens needs --dir, or both --ratings and --items");
      }
      return {
        format,
        name,
        dir: data.dir,
        ratings: data.ratings,
        movies: data.items,
        variant: data.variant,
      };
    case "amazon":
      if (data.ratings === undefined && data.reviews === undefined) {
        throw new InputError("--format amazon needs --ratings (ratings CSV) or --reviews (reviews JSON)");
      }
      return { format, name, ratings: data.ratings, reviews: data.reviews, meta: need("items", "items") };
    case "generic":
      return {
        format,
        name,
        interactions: need("ratings", "ratings"),
        items: need("items", "items"),
        columns: data.columns,
        delimiter: data.delimiter === "\\t" ? "\t" : data.delimiter,
        encoding: data.encoding,
      };
    case "recbole": {
      const { itemId, ...columns } = data.columns ?? {};
      if (itemId !== undefined)
        throw new InputError(`${label("columns.itemId", "item-id-col")} is not used by --format recbole`);
      return { format, name, inter: need("ratings", "ratings"), item: need("items", "items"), columns };
    }
  }
}

export function loadOptionsFrom(data: DataConfig): LoadOptions {
  return {
    minRating: data.minRating,
    minUserCount: data.minUc,
    minItemCount: data.minSc,
    strict: data.strict,
    cacheDir: data.cacheDir,
    noCache: data.cache === false,
  };
}
