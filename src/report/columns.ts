/**
 * Table columns from run data: the retrievers of several runs side by side with the published numbers for
 * the same dataset — the paper's Table 1 layout. `retrieverTable(runs)` is the whole Markdown table, e.g.
 * for the four baselines:
 *
 *   const runs = await Promise.all(["lru-a", "sasrec-a", "bert4rec-a", "narm-a"].map(readRunData));
 *   console.log(retrieverTable(runs, await loadReference()));
 */
import { modelLabel } from "./describe.js";
import { findReference, type ReferenceNumbers, referencesFor } from "./reference.js";
import type { RunData } from "./run-data.js";
import { type PaperTableOptions, paperTable, type TableColumn } from "./table.js";

/**
 * One column per run with retriever test metrics (header: the model's name, or "name · run" when two runs
 * share a model), each with the published numbers of its model when the reference has them, then the
 * reference's columns for the runs' datasets (comparison only, never bold).
 */
export function retrieverColumns(
  runs: readonly RunData[],
  reference: ReferenceNumbers | null = null,
): TableColumn[] {
  const withTest = runs.filter((r) => r.retriever?.test);
  const labels = withTest.map((r) => modelLabel(r.retriever!.model));
  const unique = new Set(labels).size === labels.length;
  const columns: TableColumn[] = withTest.map((run, i) => {
    const ret = run.retriever!;
    const ref = findReference(reference, { dataset: run.dataset.name, model: ret.model, view: "retriever" });
    return {
      header: unique ? labels[i]! : `${labels[i]!} · ${run.name}`,
      metrics: ret.test!.metrics,
      reference: ref?.metrics,
    };
  });
  for (const ds of new Set(withTest.map((r) => r.dataset.name))) {
    for (const e of referencesFor(reference, ds, "retriever")) {
      columns.push({ header: e.name, metrics: e.metrics, comparisonOnly: true });
    }
  }
  return columns;
}

/** The runs' retrievers in the paper's Table 1 layout (Markdown). */
export function retrieverTable(
  runs: readonly RunData[],
  reference: ReferenceNumbers | null = null,
  options: PaperTableOptions = {},
): string {
  return paperTable(retrieverColumns(runs, reference), options);
}
