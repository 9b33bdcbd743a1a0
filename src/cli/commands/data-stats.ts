/** `llamarec data stats`: statistics of a prepared dataset (the paper's Table 2) and what was skipped. */
import { dataSection } from "../../config/core.js";
import { formatStatsTable, type LoadResult, loadDataset } from "../../data/index.js";
import { log } from "../../util/log.js";
import { addDataOptions, DATA_CONFIG_FLAGS, datasetSpecFrom, loadOptionsFrom } from "../data-options.js";
import type { CommandContext, CommandSpec } from "../registry.js";

export const dataStatsCommand: CommandSpec = {
  path: ["data", "stats"],
  summary: "print users, items, interactions, average length, density and skipped rows",
  configure(cmd) {
    addDataOptions(cmd).option("--json", "print the statistics and read report as JSON");
  },
  configFlags: DATA_CONFIG_FLAGS,
  async run(ctx) {
    const result = await loadFromConfig(ctx);
    if (ctx.opts.json) {
      ctx.out.write(
        `${JSON.stringify({ name: result.dataset.name, stats: result.stats, report: result.report }, null, 2)}\n`,
      );
      return;
    }
    ctx.out.write(`${formatLoadSummary(result)}\n`);
  },
};

export async function loadFromConfig(ctx: CommandContext): Promise<LoadResult> {
  const data = dataSection.get(ctx.config);
  const spec = datasetSpecFrom(data);
  const result = await loadDataset(spec, loadOptionsFrom(data));
  const r = result.report;
  log.info(
    `${result.dataset.name}: ${r.cacheHit ? "from cache" : `read ${r.sourceFiles.length} files`} in ${(r.elapsedMs / 1000).toFixed(2)}s`,
  );
  log.debug(`cache: ${r.cachePath ?? "off"}`);
  return result;
}

const thousands = (n: number) => n.toLocaleString("en-US");

/** The statistics table, then the rows read / skipped and the filtering stages. */
export function formatLoadSummary(result: LoadResult): string {
  const r = result.report;
  const lines = [formatStatsTable({ name: result.dataset.name, stats: result.stats }), ""];
  lines.push(`rows read: ${thousands(r.rowsRead)}, skipped: ${thousands(r.skippedRows)}`);
  for (const [reason, count] of Object.entries(r.skippedByReason).sort((a, b) => b[1] - a[1])) {
    lines.push(`  skipped (${reason}): ${thousands(count)}`);
  }
  for (const example of r.skippedExamples.slice(0, 3)) lines.push(`    e.g. ${example}`);
  const p = r.preprocess;
  const stages = p.stages.map((s) => `${s.stage} ${thousands(s.interactions)}`).join(" → ");
  lines.push(`interactions: ${stages}`);
  lines.push(
    `filters: min rating ${p.minRating ?? "none"}, k-core users >= ${p.minUserCount}, items >= ${p.minItemCount}` +
      ` (${p.kCoreIterations} ${p.kCoreIterations === 1 ? "pass" : "passes"}); items without a title: ${thousands(p.itemsWithoutTitle)}`,
  );
  return lines.join("\n");
}
