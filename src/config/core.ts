/** Config sections owned by the foundation: data preparation and evaluation. */
import { z } from "zod";
import { DEFAULT_KS } from "../eval/metrics.js";
import { defineConfigSection } from "./sections.js";

export const DATA_FORMATS = ["movielens", "amazon", "generic", "recbole"] as const;

const positiveInt = z.number().int().positive();

/**
 * Where the interactions come from and how they are filtered. Unset fields take the data layer's
 * defaults (the official LlamaRec preprocessing), so they are all optional here.
 */
export const dataSection = defineConfigSection(
  "data",
  z.strictObject({
    /** A bundled dataset by name, e.g. "ml-latest-small". */
    dataset: z.string().min(1).optional(),
    /** Or a format plus files. */
    format: z.enum(DATA_FORMATS).optional(),
    /** Interactions file (ratings / reviews / .inter). */
    ratings: z.string().min(1).optional(),
    /** Item metadata file (movies.csv, meta_*.json, .item). */
    items: z.string().min(1).optional(),
    /** Column names for the generic format. */
    columns: z
      .strictObject({
        user: z.string().min(1).optional(),
        item: z.string().min(1).optional(),
        timestamp: z.string().min(1).optional(),
        rating: z.string().min(1).optional(),
        title: z.string().min(1).optional(),
      })
      .optional(),
    delimiter: z.string().min(1).optional(),
    minRating: z.number().optional(),
    minUc: positiveInt.optional(),
    minSc: positiveInt.optional(),
    /** Fail on the first malformed row instead of skipping and counting it. */
    strict: z.boolean().optional(),
    cacheDir: z.string().min(1).optional(),
    cache: z.boolean().optional(),
  }),
);

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
