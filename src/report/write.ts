/**
 * `llamarec report` and the pipeline's last stage: one or more run folders in, a report folder out —
 *
 *   report.md    the paper's tables (retriever over all test users; ranker on the retrieval subset, the
 *                paper's Table 3; overall two-stage, the paper's Table 1), the charts, and in words what the
 *                models were and when their numbers cannot be compared with the paper's
 *   report.json  the same numbers and statements for programs
 *   *.svg        training curves, retriever vs two-stage per metric, the retrieval-subset share
 *
 * buildReport is pure (run data in, documents out); writeReport reads the runs and writes the files
 * atomically.
 */
import { mkdir } from "node:fs/promises";
import { join, relative } from "node:path";
import type { Metrics } from "../eval/index.js";
import { reportPaths, runPaths } from "../run/index.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { InputError } from "../util/errors.js";
import type { Events } from "../util/events.js";
import { metricBarsChart, subsetShareChart, trainingCurvesChart } from "./charts.js";
import { retrieverColumns } from "./columns.js";
import {
  describeRanker,
  describeRetriever,
  describeRun,
  formatSeconds,
  modelLabel,
  type RankerStatement,
  rankerLabel,
} from "./describe.js";
import {
  findReference,
  loadReference,
  type ReferenceNumbers,
  referencesFor,
  relativeDifference,
} from "./reference.js";
import { type RankerSplit, type RunData, readRunData } from "./run-data.js";
import { PAPER_ROWS, paperTable, type TableColumn } from "./table.js";

export const REPORT_VERSION = 1;

export interface WriteReportOptions {
  /**
   * Folder for report.md, report.json and the charts. Default: the run's own `report/` folder for one run;
   * required for several.
   */
  outDir?: string;
  /**
   * Published numbers to set beside the runs: a parsed file, the path of one, or null for none.
   * Default: the bundled LlamaRec Table 1 cells (data/reference/llamarec-paper.json).
   */
  reference?: ReferenceNumbers | string | null;
  /** First heading of report.md (default "llamarec report"). */
  title?: string;
  /** Progress lines, e.g. each file written. */
  onLog?: (line: string) => void;
  /** Receives a log line and one artifact per file written (report.markdown, report.json, report.chart). */
  events?: Events;
}

export interface ReportChart {
  /** File name inside the report folder. */
  file: string;
  title: string;
}

/** A table as data: the columns' headers and metrics (and, where a reference applies, its cells). */
export interface ReportTable {
  title: string;
  columns: Array<TableColumn & { relative?: Metrics }>;
  markdown: string;
}

export interface ReportJson {
  version: typeof REPORT_VERSION;
  generatedAt: string;
  split: "test";
  runs: Array<{
    name: string;
    dir: string;
    summary: string;
    dataset: RunData["dataset"];
    retriever: (NonNullable<RunData["retriever"]> & { statement: string }) | null;
    ranker: (Omit<NonNullable<RunData["ranker"]>, "curve"> & RankerStatement) | null;
    stages: RunData["stages"];
  }>;
  tables: { retriever: ReportTable | null; rankerSubset: ReportTable | null; overall: ReportTable | null };
  reference: { source: string; url?: string; note?: string } | null;
  notes: string[];
  charts: ReportChart[];
}

export interface BuiltReport {
  markdown: string;
  json: ReportJson;
  /** File name → SVG text. */
  svgs: Map<string, string>;
}

function withRelative(column: TableColumn): TableColumn & { relative?: Metrics } {
  if (!column.reference) return column;
  const relative: Metrics = {};
  for (const row of PAPER_ROWS) {
    const r = relativeDifference(column.metrics[row.key], column.reference[row.key]);
    if (r !== undefined) relative[row.key] = r;
  }
  return { ...column, relative };
}

function table(title: string, columns: TableColumn[]): ReportTable {
  return { title, columns: columns.map(withRelative), markdown: paperTable(columns) };
}

/** File-name-safe version of a run name. */
function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, "_");
}

function pct(n: number, d: number): string {
  return d > 0 ? `${((100 * n) / d).toFixed(1)}%` : "–";
}

/** The report's documents from run data (no I/O). */
export function buildReport(
  runs: readonly RunData[],
  reference: ReferenceNumbers | null,
  options: { title?: string; now?: Date } = {},
): BuiltReport {
  if (runs.length === 0) throw new InputError("report: no runs given");
  const many = runs.length > 1;
  const head = (label: string, run: RunData) => (many ? `${label} · ${run.name}` : label);
  const notes: string[] = [];
  const svgs = new Map<string, string>();
  const charts: ReportChart[] = [];
  const addChart = (file: string, title: string, svg: string) => {
    svgs.set(file, svg);
    charts.push({ file, title });
  };

  // Table 1 of the runs' retrievers (full ranking over all test users), with the published columns.
  const retrieverCols = retrieverColumns(runs, reference);
  const retrieverRuns = runs.filter((r) => r.retriever?.test);
  const retrieverTable =
    retrieverCols.length > 0 ? table("Retriever, all test users (full ranking)", retrieverCols) : null;

  // The ranker's views, per run that has a ranked test split.
  const rankerRuns = runs.filter((r) => r.ranker?.test);
  let subsetTable: ReportTable | null = null;
  let overallTable: ReportTable | null = null;
  if (rankerRuns.length > 0) {
    const subsetColumns: TableColumn[] = [];
    const overallColumns: TableColumn[] = [];
    for (const run of rankerRuns) {
      const t = run.ranker!.test!;
      const retName = modelLabel(run.retriever?.model ?? "retriever");
      const twoStage = `${retName} → ${rankerLabel(run.ranker!)}`;
      subsetColumns.push({ header: head(retName, run), metrics: t.retrieverOnSubset });
      subsetColumns.push({ header: head(twoStage, run), metrics: t.rankerOnSubset });
      const ref = run.retriever
        ? findReference(reference, {
            dataset: run.dataset.name,
            model: run.retriever.model,
            view: "retriever",
          })
        : undefined;
      overallColumns.push({ header: head(retName, run), metrics: t.retriever, reference: ref?.metrics });
      const refOverall = run.retriever
        ? findReference(reference, { dataset: run.dataset.name, model: run.retriever.model, view: "overall" })
        : undefined;
      overallColumns.push({
        header: head(twoStage, run),
        metrics: t.overall,
        // Published two-stage numbers only beside a ranker comparable with the paper's.
        reference: describeRanker(run.ranker!).comparableWithPaper ? refOverall?.metrics : undefined,
      });
    }
    for (const ds of new Set(rankerRuns.map((r) => r.dataset.name))) {
      for (const e of [
        ...referencesFor(reference, ds, "retriever"),
        ...referencesFor(reference, ds, "overall"),
      ]) {
        overallColumns.push({ header: e.name, metrics: e.metrics, comparisonOnly: true });
      }
    }
    subsetTable = table("Ranker on the retrieval subset (the paper's Table 3)", subsetColumns);
    overallTable = table("Overall two-stage, all test users (the paper's Table 1)", overallColumns);
  }

  // Charts.
  const retrieverCurves = runs
    .filter(
      (r) => r.retriever?.curve && r.retriever.curve.loss.length + r.retriever.curve.validation.length > 0,
    )
    .map((r) => {
      const best = r.retriever!.selection?.bestIteration;
      return { name: r.name, curve: r.retriever!.curve!, best: typeof best === "number" ? best : null };
    });
  if (retrieverCurves.length > 0) {
    addChart(
      "retriever-training.svg",
      "Retriever training: loss and validation Recall@10",
      trainingCurvesChart(retrieverCurves, { title: "Retriever training", xName: "iteration" }),
    );
  }
  const rankerCurves = runs
    .filter((r) => r.ranker?.curve && r.ranker.curve.loss.length + r.ranker.curve.validation.length > 0)
    .map((r) => ({ name: r.name, curve: r.ranker!.curve!, best: r.ranker!.training?.bestStep ?? null }));
  if (rankerCurves.length > 0) {
    addChart(
      "ranker-training.svg",
      "Ranker training: loss and validation Recall@10 (validation retrieval subset)",
      trainingCurvesChart(rankerCurves, {
        title: "Ranker training (validation: retrieval subset)",
        xName: "step",
      }),
    );
  }
  for (const run of rankerRuns) {
    const t = run.ranker!.test!;
    const file = many ? `stages-${slug(run.name)}.svg` : "stages.svg";
    addChart(
      file,
      `Retriever vs two-stage per metric${many ? ` (${run.name})` : ""}`,
      metricBarsChart(
        [
          { name: `${modelLabel(run.retriever?.model ?? "retriever")} alone`, metrics: t.retriever },
          { name: `two-stage with ${rankerLabel(run.ranker!)}`, metrics: t.overall },
        ],
        {
          title: `Retriever vs two-stage${many ? `: ${run.name}` : ""}`,
          subtitle: `all ${t.users} test users`,
        },
      ),
    );
  }
  const shares = runs
    .map((run) => {
      const split: RankerSplit | null = run.ranker?.test ?? null;
      if (split)
        return { name: run.name, covered: split.subsetUsers, users: split.users, n: split.numCandidates };
      const c = run.retriever?.candidates;
      if (c?.test) return { name: run.name, covered: c.test.covered, users: c.test.users, n: c.count };
      return null;
    })
    .filter((x): x is NonNullable<typeof x> => x !== null);
  if (shares.length > 0) {
    const n = shares[0]!.n;
    addChart(
      "subset-share.svg",
      `Retrieval subset: test users whose label is in the top ${n}`,
      subsetShareChart(shares, {
        title: `Test users whose label the retriever put in its top ${n}`,
        numCandidates: n,
      }),
    );
  }

  // Words.
  const statements = new Map<string, RankerStatement>();
  for (const run of runs) if (run.ranker) statements.set(run.name, describeRanker(run.ranker));
  const datasetsWithReference = new Set(
    runs
      .filter((r) => referencesFor(reference, r.dataset.name, "retriever").length > 0)
      .map((r) => r.dataset.name),
  );
  if (reference && datasetsWithReference.size === 0) {
    notes.push(
      `The reference file (${reference.source}) has no numbers for ${[...new Set(runs.map((r) => r.dataset.name))].join(", ")}; no published numbers are shown.`,
    );
  }

  // Markdown.
  const md: string[] = [];
  md.push(`# ${options.title ?? "llamarec report"}`, "");
  md.push(
    `Test split, leave-one-out, full ranking over all items (never sampled negatives); M = MRR, N = NDCG, R = Recall. Best value of each row in **bold**${reference ? "; a value followed by a percentage is (ours − published) / published" : ""}.`,
    "",
  );
  md.push("## Runs", "");
  for (const run of runs) {
    md.push(`- **${run.name}** (\`${run.dir}\`): ${describeRun(run)}.`);
    if (run.retriever) md.push(`  ${describeRetriever(run.retriever)}`);
    const s = statements.get(run.name);
    if (s) md.push(`  ${s.description}`);
  }
  md.push("");
  if (retrieverTable) {
    md.push(`## ${retrieverTable.title}`, "");
    const users = retrieverRuns
      .map((r) => `${r.retriever!.test!.users}${many ? ` (${r.name})` : ""}`)
      .join(", ");
    md.push(`Users: ${users}.`, "", retrieverTable.markdown, "");
  }
  if (subsetTable) {
    md.push(`## ${subsetTable.title}`, "");
    for (const run of rankerRuns) {
      const t = run.ranker!.test!;
      md.push(
        `${many ? `- ${run.name}: ` : ""}${t.subsetUsers} of ${t.users} test users (${pct(t.subsetUsers, t.users)}) have their label among the retriever's top ${t.numCandidates}; both columns rank the same ${t.numCandidates} candidates of these users — the retriever's order against the ranker's.`,
      );
    }
    md.push("", subsetTable.markdown, "");
  }
  if (overallTable) {
    md.push(`## ${overallTable.title}`, "");
    md.push(
      "Every test user: the ranker's position for users in the retrieval subset, the retriever's rank (a miss at every k ≤ 20) for the others.",
      "",
      overallTable.markdown,
      "",
    );
  }
  const staged = runs.filter((r) => Object.keys(r.stages).length > 0);
  if (staged.length > 0) {
    md.push("## Stages", "");
    md.push(`| ${many ? "Run | " : ""}Stage | Status | Wall time | Peak memory |`);
    md.push(`|${many ? "---|" : ""}---|---|---:|---:|`);
    for (const run of staged) {
      for (const [stage, rec] of Object.entries(run.stages)) {
        md.push(
          `| ${many ? `${run.name} | ` : ""}${stage} | ${rec.status} | ${formatSeconds(rec.wallSeconds)} | ${rec.peakRssMiB.toFixed(0)} MiB |`,
        );
      }
    }
    md.push("");
  }
  if (charts.length > 0) {
    md.push("## Charts", "");
    for (const c of charts) md.push(`![${c.title}](${c.file})`, "");
  }
  const comparability = [...statements.entries()].filter(([, s]) => !s.comparableWithPaper);
  if (reference || comparability.length > 0 || notes.length > 0) {
    md.push("## Comparing with the paper", "");
    for (const [name, s] of comparability) {
      md.push(
        `- ${many ? `${name}: ` : ""}the ranker's numbers cannot be compared with the paper's: ${s.reasons.join("; ")}.`,
      );
    }
    for (const n of notes) md.push(`- ${n}`);
    if (reference) {
      md.push(`- Published numbers: ${reference.source}${reference.url ? ` (${reference.url})` : ""}.`);
      if (reference.note) md.push(`  ${reference.note}`);
    }
    md.push("");
  }

  const json: ReportJson = {
    version: REPORT_VERSION,
    generatedAt: (options.now ?? new Date()).toISOString(),
    split: "test",
    runs: runs.map((run) => ({
      name: run.name,
      dir: run.dir,
      summary: describeRun(run),
      dataset: run.dataset,
      retriever: run.retriever ? { ...run.retriever, statement: describeRetriever(run.retriever) } : null,
      ranker: run.ranker
        ? (() => {
            const { curve: _curve, ...rest } = run.ranker;
            return { ...rest, ...statements.get(run.name)! };
          })()
        : null,
      stages: run.stages,
    })),
    tables: { retriever: retrieverTable, rankerSubset: subsetTable, overall: overallTable },
    reference: reference ? { source: reference.source, url: reference.url, note: reference.note } : null,
    notes,
    charts,
  };
  return { markdown: `${md.join("\n").trimEnd()}\n`, json, svgs };
}

export interface ReportResult {
  /** The report folder. */
  dir: string;
  markdown: string;
  json: string;
  /** Paths of the SVG charts written. */
  charts: string[];
  report: ReportJson;
}

async function resolveReference(
  reference: WriteReportOptions["reference"],
): Promise<ReferenceNumbers | null> {
  if (reference === null) return null;
  if (reference === undefined) return loadReference();
  if (typeof reference === "string") return loadReference(reference);
  return reference;
}

/**
 * Reads the run folders and writes report.md, report.json and the SVG charts into `outDir` (default: the
 * single run's report/ folder). Every file is written atomically.
 */
export async function writeReport(
  runDirs: readonly string[],
  options: WriteReportOptions = {},
): Promise<ReportResult> {
  if (runDirs.length === 0) throw new InputError("report: give at least one run folder");
  let outDir = options.outDir;
  if (outDir === undefined) {
    if (runDirs.length > 1) throw new InputError("report: several runs need an output folder (--out)");
    outDir = runPaths(runDirs[0]!).report.dir;
  }
  const runs: RunData[] = [];
  for (const dir of runDirs) runs.push(await readRunData(dir));
  const names = new Set<string>();
  for (const r of runs) {
    if (names.has(r.name))
      throw new InputError(`report: two runs are named ${r.name}; give distinct folders`);
    names.add(r.name);
  }
  const reference = await resolveReference(options.reference);
  const built = buildReport(runs, reference, { title: options.title });
  await mkdir(outDir, { recursive: true });
  const charts: string[] = [];
  for (const [file, svg] of built.svgs) {
    const path = join(outDir, file);
    await writeFileAtomic(path, svg);
    charts.push(path);
    options.events?.artifact("report.chart", path);
  }
  const { markdown, json } = reportPaths(outDir);
  await writeJsonAtomic(json, built.json);
  options.events?.artifact("report.json", json);
  await writeFileAtomic(markdown, built.markdown);
  options.events?.artifact("report.markdown", markdown);
  const line = `report: ${relative(process.cwd(), markdown) || markdown} (+ report.json, ${charts.length} charts)`;
  options.onLog?.(line);
  options.events?.log("info", line);
  return { dir: outDir, markdown, json, charts, report: built.json };
}
