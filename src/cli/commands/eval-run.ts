/**
 * `llamarec eval <run>`: reload a run's trained retriever, recompute validation and test metrics on the
 * dataset the run recorded, and check them against the run's metrics.json (they must be identical).
 * `--exclude` evaluates under another history exclusion instead (then nothing is compared).
 */

import { HISTORY_EXCLUSIONS, type HistoryExclusion } from "../../retrievers/evaluate.js";
import { evaluateRun } from "../../retrievers/run-evaluation.js";
import { resolveRunDir } from "../../run/index.js";
import { consoleEvents } from "../../util/console-events.js";
import { InputError } from "../../util/errors.js";
import type { CommandSpec } from "../registry.js";

export const evalRunCommand: CommandSpec = {
  path: ["eval"],
  summary: "recompute a run's retriever metrics from its saved model and compare with metrics.json",
  configure(cmd) {
    cmd
      .argument("<run>", "run folder name (under --runs-dir) or path")
      .option("--runs-dir <folder>", "where run folders are (default runs)", "runs")
      .option("--checkpoint", "evaluate the best weights so far of a running or killed run")
      .option(
        "--exclude <mode>",
        "history removed from the ranking, instead of the run's own: input (the model's input window, as the official code's test), full or none; not compared with metrics.json",
      )
      .option("--json", "print the metrics as JSON");
  },
  async run(ctx) {
    const exclude = ctx.opts.exclude as string | undefined;
    if (exclude !== undefined && !HISTORY_EXCLUSIONS.includes(exclude as HistoryExclusion)) {
      throw new InputError(`--exclude must be one of ${HISTORY_EXCLUSIONS.join(", ")}, got "${exclude}"`);
    }
    const runDir = resolveRunDir(ctx.args[0]!, ctx.opts.runsDir as string);
    const result = await evaluateRun(runDir, undefined, {
      checkpoint: ctx.opts.checkpoint === true,
      events: consoleEvents(),
      ...(exclude ? { exclude: exclude as HistoryExclusion } : {}),
    });
    if (ctx.opts.json) {
      ctx.out.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      const lines = [
        result.source === "checkpoint"
          ? `run: ${result.runDir} (checkpoint: best weights so far, iteration ${result.iteration})`
          : `run: ${result.runDir}`,
        `history excluded: ${result.exclude}`,
      ];
      for (const split of ["val", "test"] as const) {
        const s = result[split];
        const cells = Object.entries(s.metrics)
          .filter(([k]) => /@(1|5|10|20)$/.test(k))
          .map(([k, v]) => `${k} ${v.toFixed(4)}`);
        lines.push(`${split} (${s.users} users): ${cells.join("  ")}`);
      }
      lines.push(
        result.source === "checkpoint"
          ? "training not finished: metrics.json is written when it ends"
          : exclude !== undefined && result.recorded === null
            ? "another exclusion than the run's: not compared with metrics.json"
            : result.matchesRecorded === null
              ? "no metrics.json to compare with"
              : result.matchesRecorded
                ? "identical to metrics.json"
                : "DIFFERENT from metrics.json",
      );
      ctx.out.write(`${lines.join("\n")}\n`);
    }
    if (result.matchesRecorded === false) {
      throw new InputError(
        `recomputed metrics of ${runDir} differ from its metrics.json (other kernels or code?)`,
      );
    }
  },
};
