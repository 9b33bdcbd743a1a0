/**
 * `llamarec metrics <file>`: recompute Recall/MRR/NDCG@k from any per-user result file llamarec writes —
 * plain per-user ranks ({user, label, rank} JSON lines), a run's retriever/candidates.jsonl or its
 * ranker/ranked.jsonl (per split). With --ranker, the LlamaRec two-stage report (retriever, retrieval
 * subset, ranker on the subset, overall); candidates.jsonl + ranked.jsonl reproduce ranker/metrics.json.
 */
import { InvalidArgumentError } from "commander";
import { evalSection } from "../../config/core.js";
import { formatMetricsTable, type MetricsRow } from "../../eval/format.js";
import { metricsFromRanks } from "../../eval/metrics.js";
import { type TwoStageReport, twoStageReport } from "../../eval/two-stage.js";
import { splitMetrics } from "../../ranker/rank.js";
import { InputError } from "../../util/errors.js";
import { parseIntArg, parseIntListArg } from "../options.js";
import { KIND_NAMES, readPerUserFile, type Split, splitsOf } from "../per-user-files.js";
import type { CommandSpec } from "../registry.js";

type TwoStage = Omit<TwoStageReport, "missingRankerUsers"> & { missingRankerUsers: number };

function twoStageRows(report: TwoStage, prefix: string): MetricsRow[] {
  return [
    { name: `${prefix}retriever`, users: report.users, metrics: report.retriever },
    { name: `${prefix}retriever (subset)`, users: report.subsetUsers, metrics: report.retrieverOnSubset },
    { name: `${prefix}ranker (subset)`, users: report.subsetUsers, metrics: report.rankerOnSubset },
    { name: `${prefix}overall`, users: report.users, metrics: report.overall },
  ];
}

function parseSplit(value: string): Split {
  if (value !== "val" && value !== "test")
    throw new InvalidArgumentError(`expected val or test, got "${value}"`);
  return value;
}

export const metricsCommand: CommandSpec = {
  path: ["metrics"],
  summary:
    "recompute metrics from per-user results (candidates.jsonl, ranked.jsonl, {user, label, rank} lines)",
  description:
    "Reads any per-user result file llamarec writes: a run's retriever/candidates.jsonl (the retriever's " +
    "full-ranking rank of each label, per split), its ranker/ranked.jsonl (the ranker's rank inside the " +
    "candidates, per split), or {user, label, rank} JSON lines. --ranker <ranked.jsonl> with a " +
    "candidates.jsonl prints the two-stage report of ranker/metrics.json.",
  configure(cmd) {
    cmd
      .argument("<results>", "per-user results: candidates.jsonl, ranked.jsonl or {user, label, rank} lines")
      .option(
        "--ranker <file>",
        "the ranker's per-user results over the first file's candidates (ranked.jsonl, or {user, label, rank} lines): two-stage report",
      )
      .option("--split <split>", "run files: only this split (val or test; default both)", parseSplit)
      .option("--ks <list>", "cut-offs, e.g. 1,5,10,20,50", parseIntListArg)
      .option("--num-candidates <n>", "candidates per user given to the ranker (default 20)", parseIntArg)
      .option("--json", "print JSON instead of a table");
  },
  configFlags: { ks: "eval.ks", numCandidates: "eval.numCandidates" },
  async run(ctx) {
    const { ks, numCandidates } = evalSection.get(ctx.config);
    const main = await readPerUserFile(ctx.args[0]!);
    const rankerFile = ctx.opts.ranker as string | undefined;
    const ranker = rankerFile === undefined ? undefined : await readPerUserFile(rankerFile);
    const only = ctx.opts.split as Split | undefined;
    const splitsIn = (records: readonly { split: Split }[]) => {
      const present = splitsOf(records);
      const chosen = only === undefined ? present : present.filter((s) => s === only);
      if (chosen.length === 0)
        throw new InputError(`${main.path}: no ${only ?? "val or test"} users in this file`);
      return chosen;
    };
    if (only !== undefined && main.kind === "ranks")
      throw new InputError(`--split: ${main.path} holds ${KIND_NAMES.ranks}, which have no splits`);

    const print = (json: unknown, rows: MetricsRow[], note?: string) => {
      ctx.out.write(
        ctx.opts.json ? `${JSON.stringify(json, null, 2)}\n` : `${formatMetricsTable(rows, ks)}\n`,
      );
      if (note && !ctx.opts.json) ctx.out.write(`\n${note}\n`);
    };

    if (!ranker) {
      if (main.kind === "ranks") {
        const metrics = metricsFromRanks(main.ranks, ks);
        print({ users: main.ranks.length, metrics }, [{ name: "all", users: main.ranks.length, metrics }]);
        return;
      }
      const json: Partial<Record<Split, unknown>> = {};
      const rows: MetricsRow[] = [];
      if (main.kind === "candidates") {
        for (const split of splitsIn(main.records)) {
          const ranks = main.records.filter((r) => r.split === split).map((r) => ({ rank: r.labelRank }));
          const metrics = metricsFromRanks(ranks, ks);
          json[split] = { users: ranks.length, metrics };
          rows.push({ name: `${split} retriever`, users: ranks.length, metrics });
        }
        print(json, rows);
        return;
      }
      // ranked.jsonl alone: the ranker and the retriever on the users the ranker ranked.
      for (const split of splitsIn(main.records)) {
        const subset = main.records.filter((r) => r.split === split && r.labelRankAfter !== null);
        const rankerM = metricsFromRanks(
          subset.map((r) => ({ rank: r.labelRankAfter! })),
          ks,
        );
        const retrieverM = metricsFromRanks(
          subset.map((r) => ({ rank: r.labelRankBefore })),
          ks,
        );
        json[split] = { subsetUsers: subset.length, rankerOnSubset: rankerM, retrieverOnSubset: retrieverM };
        rows.push({ name: `${split} retriever (subset)`, users: subset.length, metrics: retrieverM });
        rows.push({ name: `${split} ranker (subset)`, users: subset.length, metrics: rankerM });
      }
      print(
        json,
        rows,
        "Users whose label the retriever missed are not in ranked.jsonl; for overall metrics give the candidates too: llamarec metrics <run>/retriever/candidates.jsonl --ranker <run>/ranker/ranked.jsonl",
      );
      return;
    }

    if (main.kind === "ranks" && ranker.kind === "ranks") {
      const report = twoStageReport(main.ranks, ranker.ranks, { ks, numCandidates });
      const missing = report.missingRankerUsers;
      print(
        report,
        twoStageRows({ ...report, missingRankerUsers: missing.length }, ""),
        missing.length > 0
          ? `${missing.length} subset users have no ranker result (counted as misses), e.g. user ${missing[0]}`
          : undefined,
      );
      return;
    }
    if (main.kind === "candidates" && ranker.kind === "ranked") {
      const json: Partial<Record<Split, TwoStage>> = {};
      const rows: MetricsRow[] = [];
      const notes: string[] = [];
      for (const split of splitsIn(main.records)) {
        const report = splitMetrics(
          main.records.filter((r) => r.split === split),
          ranker.records.filter((r) => r.split === split),
          numCandidates,
          ks,
        );
        json[split] = report;
        rows.push(...twoStageRows(report, `${split} `));
        if (report.missingRankerUsers > 0)
          notes.push(
            `${split}: ${report.missingRankerUsers} subset users have no ranker result (counted as misses)`,
          );
      }
      print(json, rows, notes.length > 0 ? notes.join("\n") : undefined);
      return;
    }
    throw new InputError(
      main.kind === "ranked"
        ? `${main.path} is ${KIND_NAMES.ranked}: give the run's retriever/candidates.jsonl first, then --ranker ${main.path}`
        : `--ranker ${ranker.path} is ${KIND_NAMES[ranker.kind]}, but ${main.path} is ${KIND_NAMES[main.kind]}: pair candidates.jsonl with ranked.jsonl, or {user, label, rank} files with each other`,
    );
  },
};
