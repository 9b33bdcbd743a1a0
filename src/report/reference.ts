/**
 * Published numbers to compare runs with: a small JSON file of metric cells, each tied to a dataset, a
 * retriever model and a view (retriever over all users, or the overall two-stage result). The bundled file
 * `data/reference/llamarec-paper.json` holds the ML-100k cells of the LlamaRec paper's Table 1 (source in
 * the file); `--reference <file>` reads another one of the same shape:
 *
 *   { "version": 1, "source": "who published it, where", "url"?: "…", "note"?: "…",
 *     "entries": [ { "name": "LRURec (paper)", "model": "lru", "dataset": "ml-latest-small",
 *                    "view": "retriever" | "overall", "metrics": { "MRR@5": 0.039, … } } ] }
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { packageRoot } from "../data/index.js";
import { readJsonFile } from "../run/index.js";
import { InputError } from "../util/errors.js";

export const REFERENCE_VIEWS = ["retriever", "overall"] as const;
/** Which of a run's numbers a reference cell is comparable with. */
export type ReferenceView = (typeof REFERENCE_VIEWS)[number];

const entrySchema = z.object({
  /** Column header, e.g. "LRURec (paper)". */
  name: z.string().min(1),
  /** Retriever model id of the runs it compares with (lru, sasrec, bert4rec, narm, …). */
  model: z.string().min(1),
  /** Dataset name as runs record it (config.json dataset.name). */
  dataset: z.string().min(1),
  view: z.enum(REFERENCE_VIEWS),
  metrics: z.record(z.string(), z.number().finite()),
});

const fileSchema = z.object({
  version: z.literal(1),
  source: z.string().min(1),
  url: z.string().optional(),
  note: z.string().optional(),
  entries: z.array(entrySchema),
});

export type ReferenceEntry = z.output<typeof entrySchema>;
export type ReferenceNumbers = z.output<typeof fileSchema>;

/** The bundled LlamaRec Table 1 (ML-100k) cells. */
export function bundledReferencePath(): string {
  return join(packageRoot(), "data", "reference", "llamarec-paper.json");
}

/** Validates a parsed reference file; errors name the file and the first bad field. */
export function parseReference(value: unknown, path: string): ReferenceNumbers {
  const parsed = fileSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InputError(`${path}: field "${issue.path.join(".")}": ${issue.message}`);
  }
  return parsed.data;
}

/** Reads a reference file (default: the bundled one). */
export async function loadReference(path = bundledReferencePath()): Promise<ReferenceNumbers> {
  if (!existsSync(path)) throw new InputError(`reference file ${path} does not exist`);
  return parseReference(await readJsonFile(path, "reference file"), path);
}

/** The reference entry for this dataset, retriever model and view, if any. */
export function findReference(
  reference: ReferenceNumbers | null | undefined,
  query: { dataset: string; model: string; view: ReferenceView },
): ReferenceEntry | undefined {
  return reference?.entries.find(
    (e) => e.dataset === query.dataset && e.model === query.model && e.view === query.view,
  );
}

/** Entries for a dataset and view, in file order. */
export function referencesFor(
  reference: ReferenceNumbers | null | undefined,
  dataset: string,
  view: ReferenceView,
): ReferenceEntry[] {
  return reference?.entries.filter((e) => e.dataset === dataset && e.view === view) ?? [];
}

/** (ours − published) / published; undefined when either is missing or the published value is 0. */
export function relativeDifference(
  ours: number | undefined,
  published: number | undefined,
): number | undefined {
  if (ours === undefined || published === undefined || !Number.isFinite(ours) || published === 0) {
    return undefined;
  }
  return (ours - published) / published;
}
