/**
 * The pipeline's last stage: the run's report through src/report (writeReport: report.md, report.json,
 * SVG charts in <run>/report/), and the headline table printed at the end of `llamarec run`.
 */
import { paperTable, type ReportResult, writeReport } from "../report/index.js";
import type { Events } from "../util/events.js";
import type { Evaluation } from "./evaluate.js";
import type { PipelineSettings } from "./settings.js";

export async function writeRunReport(
  runDir: string,
  settings: PipelineSettings["report"],
  events: Events,
): Promise<ReportResult> {
  const result = await writeReport([runDir], {
    ...(settings.reference === undefined ? {} : { reference: settings.reference }),
    ...(settings.title === undefined ? {} : { title: settings.title }),
    onLog: (line) => events.log("info", line),
  });
  events.artifact("report.markdown", result.markdown);
  events.artifact("report.json", result.json);
  return result;
}

/** The paper's layout (rows M@5 … R@10): retriever on all users, ranker on the subset, both stages. */
export function headlineTable(e: Evaluation): string {
  return paperTable(
    [
      { header: `Retriever (${e.users} users)`, metrics: e.retriever, comparisonOnly: true },
      {
        header: `Retriever on subset (${e.subsetUsers})`,
        metrics: e.retrieverOnSubset,
        comparisonOnly: true,
      },
      { header: `Ranker on subset (${e.subsetUsers})`, metrics: e.rankerOnSubset, comparisonOnly: true },
      { header: "Two-stage (all users)", metrics: e.overall, comparisonOnly: true },
    ],
    { corner: "Test" },
  );
}
