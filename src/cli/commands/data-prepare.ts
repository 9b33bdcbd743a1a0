/** `llamarec data prepare --out <dir>`: prepare a dataset and export it in the generic format. */
import { join } from "node:path";
import { exportGeneric } from "../../data/index.js";
import { writeJsonAtomic } from "../../util/atomic.js";
import { InputError } from "../../util/errors.js";
import { log } from "../../util/log.js";
import { addDataOptions, DATA_CONFIG_FLAGS } from "../data-options.js";
import type { CommandSpec } from "../registry.js";
import { formatLoadSummary, loadFromConfig } from "./data-stats.js";

export const dataPrepareCommand: CommandSpec = {
  path: ["data", "prepare"],
  summary: "filter, split and cache a dataset; with --out, export it as generic CSV files",
  description:
    "Reads the source files, applies the rating filter and k-core, re-indexes and splits leave-one-out, and " +
    "caches the result. With --out <dir>, also writes interactions.csv, items.csv and prepare.json there: " +
    "loading them back with --format generic gives the same users, items and splits.",
  configure(cmd) {
    addDataOptions(cmd).option("--out <dir>", "export folder for the generic format");
  },
  configFlags: DATA_CONFIG_FLAGS,
  async run(ctx) {
    const out = ctx.opts.out as string | undefined;
    if (out !== undefined && out.trim() === "") throw new InputError("--out: expected a folder path");
    const result = await loadFromConfig(ctx);
    ctx.out.write(`${formatLoadSummary(result)}\n`);
    if (out === undefined) {
      log.info(`prepared and cached; add --out <dir> to export it`);
      return;
    }
    const files = await exportGeneric(result.dataset, out);
    await writeJsonAtomic(join(out, "prepare.json"), {
      name: result.dataset.name,
      stats: result.stats,
      source: { format: result.report.format, files: result.report.sourceFiles },
      read: {
        rowsRead: result.report.rowsRead,
        skippedRows: result.report.skippedRows,
        skippedByReason: result.report.skippedByReason,
      },
      preprocess: result.report.preprocess,
      reload: `llamarec data stats --format generic --ratings ${files.interactions} --items ${files.items}`,
    });
    ctx.out.write(
      `\nwrote ${files.interactions}\nwrote ${files.items}\nwrote ${join(out, "prepare.json")}\n`,
    );
  },
};
