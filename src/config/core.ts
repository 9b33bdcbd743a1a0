/** Config sections owned by the foundation: data preparation and evaluation. */
import { z } from "zod";
import { DEFAULT_KS } from "../eval/metrics.js";
import { defineConfigSection } from "./sections.js";

export const DATA_FORMATS = ["movielens", "amazon", "generic", "recbole"] as const;

const positiveInt = z.number().int().positive();

/**
 * Where the interactions come from and how they are filtered (see src/data/load.ts DatasetSpec). Unset
 * fields take the data layer's defaults (the official LlamaRec preprocessing), so all are optional.
 * File fields are shared across formats: `ratings` is the interactions file (MovieLens ratings, Amazon
 * ratings CSV, generic interactions, RecBole .inter) and `items` the item file (MovieLens movies, Amazon
 * meta, generic items, RecBole .item).
 */
export const dataSection = defineConfigSection(
  "data",
  z.strictObject({
    /** A bundled dataset by name, e.g. "ml-latest-small". */
    dataset: z.string().min(1).optional(),
    /** Or a format plus files. */
    format: z.enum(DATA_FORMATS).optional(),
    /** Display name (default: from the folder or file name). */
    name: z.string().min(1).optional(),
    /** MovieLens: a folder with ratings.csv + movies.csv, u.data + u.item or ratings.dat + movies.dat. */
    dir: z.string().min(1).optional(),
    ratings: z.string().min(1).optional(),
    /** Amazon: reviews_<Category>_5.json(.gz), instead of a ratings CSV. */
    reviews: z.string().min(1).optional(),
    items: z.string().min(1).optional(),
    /** MovieLens file layout; detected from the file names when unset. */
    variant: z.enum(["csv", "100k", "1m"]).optional(),
    /** Column names (generic and RecBole formats). */
    columns: z
      .strictObject({
        user: z.string().min(1).optional(),
        item: z.string().min(1).optional(),
        timestamp: z.string().min(1).optional(),
        rating: z.string().min(1).optional(),
        /** Generic items file: the item id column. */
        itemId: z.string().min(1).optional(),
        title: z.string().min(1).optional(),
      })
      .optional(),
    /** Generic format: field delimiter for both files (default from the extension). */
    delimiter: z.string().min(1).optional(),
    encoding: z.enum(["utf8", "latin1"]).optional(),
    minRating: z.number().optional(),
    /** At least 2: validation and test need one item each. */
    minUc: z.number().int().min(2).optional(),
    minSc: positiveInt.optional(),
    /** Fail on the first malformed row instead of skipping and counting it. */
    strict: z.boolean().optional(),
    cacheDir: z.string().min(1).optional(),
    cache: z.boolean().optional(),
  }),
);

export type DataConfig = z.output<typeof dataSection.schema>;

export const evalSection = defineConfigSection(
  "eval",
  z.strictObject({
    ks: z
      .array(positiveInt)
      .min(1)
      .default([...DEFAULT_KS]),
    tie: z.enum(["pessimistic", "expected"]).default("pessimistic"),
    /** "full": the whole known history never counts; "input": only the model's input (official); "none". */
    exclude: z.enum(["full", "input", "none"]).default("full"),
    numCandidates: positiveInt.default(20),
  }),
);
