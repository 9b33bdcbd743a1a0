/**
 * Metric tables in the LlamaRec paper's layout (its Tables 1 and 3): one row per metric — M@5, N@5, R@5,
 * M@10, N@10, R@10 — and one column per model or run, the best value of each row in bold. A column may carry
 * published numbers for the same model; each of its cells then shows the relative difference to them.
 *
 *   | Metric | LRURec · run-a | LRURec · run-b | LRURec (paper) |
 *   |--------|---------------:|---------------:|---------------:|
 *   | M@5    | **0.0412** (+5.6%) | 0.0388 (−0.5%) | 0.0390 |
 */
import type { Metrics } from "../eval/index.js";
import { relativeDifference } from "./reference.js";

export interface PaperRow {
  /** Metric key as the evaluator writes it, e.g. "MRR@5". */
  key: string;
  /** Row label as the paper prints it, e.g. "M@5". */
  label: string;
}

/** The paper's rows, in its order. */
export const PAPER_ROWS: readonly PaperRow[] = [
  { key: "MRR@5", label: "M@5" },
  { key: "NDCG@5", label: "N@5" },
  { key: "Recall@5", label: "R@5" },
  { key: "MRR@10", label: "M@10" },
  { key: "NDCG@10", label: "N@10" },
  { key: "Recall@10", label: "R@10" },
];

export interface TableColumn {
  header: string;
  metrics: Metrics;
  /** Published numbers for the same model and view: each cell adds (ours − published) / published. */
  reference?: Metrics;
  /** Shown for comparison only (e.g. the published numbers themselves): never bold, never "best". */
  comparisonOnly?: boolean;
}

export interface PaperTableOptions {
  rows?: readonly PaperRow[];
  /** Decimals of each value (default 4, as the paper). */
  digits?: number;
  /** Header of the first column (default "Metric"). */
  corner?: string;
}

/** "+5.6%" / "−0.5%" (a real minus sign), one decimal. */
export function formatRelative(r: number): string {
  const pct = (r * 100).toFixed(1);
  if (pct === "0.0" || pct === "-0.0") return "±0.0%";
  return r > 0 ? `+${pct}%` : `−${pct.slice(1)}%`;
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/**
 * For each row, the indices of the columns holding its best value (at the printed precision); empty when
 * fewer than two columns compete.
 */
export function bestColumns(
  columns: readonly TableColumn[],
  rows: readonly PaperRow[] = PAPER_ROWS,
  digits = 4,
): number[][] {
  const competing = columns.map((c, i) => ({ c, i })).filter(({ c }) => !c.comparisonOnly);
  return rows.map((row) => {
    if (competing.length < 2) return [];
    const rounded = competing
      .map(({ c, i }) => ({ i, v: c.metrics[row.key] }))
      .filter((x): x is { i: number; v: number } => x.v !== undefined && Number.isFinite(x.v))
      .map(({ i, v }) => ({ i, v: Number(v.toFixed(digits)) }));
    if (rounded.length === 0) return [];
    const max = Math.max(...rounded.map((x) => x.v));
    return rounded.filter((x) => x.v === max).map((x) => x.i);
  });
}

/** A Markdown table in the paper's layout; missing or NaN values print "–". */
export function paperTable(columns: readonly TableColumn[], options: PaperTableOptions = {}): string {
  const rows = options.rows ?? PAPER_ROWS;
  const digits = options.digits ?? 4;
  const best = bestColumns(columns, rows, digits);
  const header = [options.corner ?? "Metric", ...columns.map((c) => escapeCell(c.header))];
  const body = rows.map((row, r) => [
    row.label,
    ...columns.map((c, i) => {
      const v = c.metrics[row.key];
      if (v === undefined || !Number.isFinite(v)) return "–";
      let cell = v.toFixed(digits);
      if (best[r]!.includes(i)) cell = `**${cell}**`;
      const rel = relativeDifference(v, c.reference?.[row.key]);
      if (rel !== undefined) cell += ` (${formatRelative(rel)})`;
      return cell;
    }),
  ]);
  const widths = header.map((h, c) => Math.max(3, h.length, ...body.map((b) => b[c]!.length)));
  const pad = (s: string, c: number) => (c === 0 ? s.padEnd(widths[c]!) : s.padStart(widths[c]!));
  const line = (cells: string[]) => `| ${cells.map(pad).join(" | ")} |`;
  const rule = `|${widths.map((w, c) => (c === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), rule, ...body.map(line)].join("\n");
}
