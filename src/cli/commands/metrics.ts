/**
 * `llamarec metrics <ranks.jsonl>`: recompute Recall/MRR/NDCG@k from per-user results
 * ({user, label, rank} JSON lines). With --ranker, the LlamaRec two-stage report: retriever, retrieval
 * subset, ranker on the subset, and overall.
 */
import { evalSection } from "../../config/core.js";
import { formatMetricsTable } from "../../eval/format.js";
import { metricsFromRanks } from "../../eval/metrics.js";
import { twoStageReport } from "../../eval/two-stage.js";
import { readUserRanks } from "../../eval/user-ranks.js";
import { parseIntArg, parseIntListArg } from "../options.js";
import type { CommandSpec } from "../registry.js";

export const metricsCommand: CommandSpec = {
  path: ["metrics"],
  summary: "recompute metrics from per-user results (JSON lines {user, label, rank})",
  configure(cmd) {
    cmd
      .argument("<ranks>", "retriever (or any model's) per-user results, .jsonl")
      .option("--ranker <file>", "ranker per-user results over the candidates: print the two-stage report")
      .option("--ks <list>", "cut-offs, e.g. 1,5,10,20,50", parseIntListArg)
      .option("--num-candidates <n>", "candidates per user given to the ranker (default 20)", parseIntArg)
      .option("--json", "print JSON instead of a table");
  },
  configFlags: { ks: "eval.ks", numCandidates: "eval.numCandidates" },
  async run(ctx) {
    const { ks, numCandidates } = evalSection.get(ctx.config);
    const retrieval = await readUserRanks(ctx.args[0]!);
    const rankerFile = ctx.opts.ranker as string | undefined;
    if (rankerFile === undefined) {
      const metrics = metricsFromRanks(retrieval, ks);
      ctx.out.write(
        ctx.opts.json
          ? `${JSON.stringify({ users: retrieval.length, metrics }, null, 2)}\n`
          : `${formatMetricsTable([{ name: "all", users: retrieval.length, metrics }], ks)}\n`,
      );
      return;
    }
    const report = twoStageReport(retrieval, await readUserRanks(rankerFile), { ks, numCandidates });
    if (ctx.opts.json) {
      ctx.out.write(`${JSON.stringify(report, null, 2)}\n`);
      return;
    }
    const rows = [
      { name: "retriever", users: report.users, metrics: report.retriever },
      { name: "retriever (subset)", users: report.subsetUsers, metrics: report.retrieverOnSubset },
      { name: "ranker (subset)", users: report.subsetUsers, metrics: report.rankerOnSubset },
      { name: "overall", users: report.users, metrics: report.overall },
    ];
    ctx.out.write(`${formatMetricsTable(rows, ks)}\n`);
    if (report.missingRankerUsers.length > 0) {
      ctx.out.write(
        `\n${report.missingRankerUsers.length} subset users have no ranker result (counted as misses), e.g. user ${report.missingRankerUsers[0]}\n`,
      );
    }
  },
};
