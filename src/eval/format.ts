/** Metric tables for terminals and reports: one row per (setting, metric), one column per k. */
import { METRIC_NAMES, type Metrics, metricKey } from "./metrics.js";

export interface MetricsRow {
  /** e.g. "retriever", "ranker (subset)". */
  name: string;
  metrics: Metrics;
  /** Users the numbers average over. */
  users?: number;
}

/** Markdown table with values to 4 decimals; a k missing from a row prints "–". */
export function formatMetricsTable(rows: readonly MetricsRow[], ks: readonly number[]): string {
  const sorted = [...ks].sort((a, b) => a - b);
  const header = ["", "users", ...sorted.map((k) => `@${k}`)];
  const body: string[][] = [];
  for (const row of rows) {
    for (const name of METRIC_NAMES) {
      const cells = sorted.map((k) => {
        const v = row.metrics[metricKey(name, k)];
        return v === undefined || Number.isNaN(v) ? "–" : v.toFixed(4);
      });
      body.push([`${row.name} ${name}`, row.users === undefined ? "" : String(row.users), ...cells]);
    }
  }
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]!.length)));
  const pad = (s: string, c: number) => (c === 0 ? s.padEnd(widths[c]!) : s.padStart(widths[c]!));
  const line = (r: string[]) => `| ${r.map(pad).join(" | ")} |`;
  const rule = `|${widths.map((w, c) => (c === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), rule, ...body.map(line)].join("\n");
}
