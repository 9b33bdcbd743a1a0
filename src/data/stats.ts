import type { Dataset, DatasetStats } from "./dataset.js";
import { computeStats } from "./preprocess.js";

export { computeStats };

/** One row of a statistics table. */
export interface StatsRow {
  name: string;
  stats: DatasetStats;
}

function thousands(n: number): string {
  return Math.round(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Density in the paper's style, mantissa with two decimals: 0.04054 -> "4.05e-2". */
export function formatDensity(d: number): string {
  if (d === 0) return "0";
  const e = Math.floor(Math.log10(d));
  let m = d / 10 ** e;
  let exp = e;
  if (Number(m.toFixed(2)) >= 10) {
    m /= 10;
    exp++;
  }
  return `${m.toFixed(2)}e${exp}`;
}

/**
 * Formats dataset statistics like the paper's Table 2 (Users, Items, Interact., Length, Density) as a
 * Markdown table (default) or aligned plain text.
 *
 * | Dataset         | Users | Items | Interact. | Length | Density |
 * |-----------------|------:|------:|----------:|-------:|--------:|
 * | ml-latest-small |   610 | 3,650 |    90,274 | 147.99 | 4.05e-2 |
 */
export function formatStatsTable(
  rows: readonly StatsRow[] | StatsRow | Dataset,
  options: { format?: "markdown" | "text" } = {},
): string {
  const list: StatsRow[] = Array.isArray(rows)
    ? [...rows]
    : "train" in (rows as Dataset)
      ? [{ name: (rows as Dataset).name, stats: computeStats(rows as Dataset) }]
      : [rows as StatsRow];
  const header = ["Dataset", "Users", "Items", "Interact.", "Length", "Density"];
  const body = list.map((r) => [
    r.name,
    thousands(r.stats.users),
    thousands(r.stats.items),
    thousands(r.stats.interactions),
    r.stats.avgLength.toFixed(2),
    formatDensity(r.stats.density),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c]!.length)));
  const pad = (s: string, c: number): string => (c === 0 ? s.padEnd(widths[c]!) : s.padStart(widths[c]!));
  if (options.format === "text") {
    return [header, ...body].map((row) => row.map(pad).join("  ")).join("\n");
  }
  const line = (row: string[]): string => `| ${row.map(pad).join(" | ")} |`;
  const rule = `|${widths.map((w, c) => (c === 0 ? `${"-".repeat(w + 2)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), rule, ...body.map(line)].join("\n");
}
