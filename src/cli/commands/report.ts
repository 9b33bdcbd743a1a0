/**
 * `llamarec report <run> [<run>...]`: report.md, report.json and SVG charts of one or more run folders
 * (src/report). Prints the report's path, and with --print the Markdown itself.
 */
import { relative } from "node:path";
import { writeReport } from "../../report/index.js";
import { resolveRunDir } from "../../run/index.js";
import { log } from "../../util/log.js";
import type { CommandSpec } from "../registry.js";

export const reportCommand: CommandSpec = {
  path: ["report"],
  summary: "write report.md, report.json and SVG charts of one or more runs",
  description:
    "Tables in the LlamaRec paper's layout (rows M@5, N@5, R@5, M@10, N@10, R@10; one column per run; best in " +
    "bold): the retriever over all test users, the ranker on the retrieval subset (paper Table 3) and the " +
    "overall two-stage result (paper Table 1); charts of the training curves, retriever vs two-stage per " +
    "metric and the retrieval-subset share. Published numbers (default: the paper's Table 1 ML-100k cells, " +
    "bundled) add the relative difference per cell. One run: written to <run>/report/; several: --out.",
  configure(cmd) {
    cmd
      .argument("<runs...>", "run folders (names under --runs-dir, or paths)")
      .option("--runs-dir <folder>", "where run folders are (default runs)", "runs")
      .option("--out <folder>", "report folder (default <run>/report for one run; required for several)")
      .option(
        "--reference <file>",
        "published numbers to compare with (JSON; default: the bundled paper cells)",
      )
      .option("--no-reference", "compare with no published numbers")
      .option("--title <text>", "first heading of report.md")
      .option("--print", "also print report.md to stdout");
  },
  async run(ctx) {
    const runsDir = ctx.opts.runsDir as string;
    const runDirs = ctx.args.map((r) => resolveRunDir(r, runsDir));
    const ref = ctx.opts.reference as string | boolean | undefined;
    const result = await writeReport(runDirs, {
      outDir: ctx.opts.out as string | undefined,
      reference: ref === false ? null : typeof ref === "string" ? ref : undefined,
      title: ctx.opts.title as string | undefined,
      onLog: (line) => log.info(line),
    });
    if (ctx.opts.print) {
      const { readFile } = await import("node:fs/promises");
      ctx.out.write(await readFile(result.markdown, "utf8"));
    }
    ctx.out.write(`${relative(process.cwd(), result.markdown) || result.markdown}\n`);
  },
};
