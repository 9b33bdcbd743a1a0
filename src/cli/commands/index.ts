/** Every `llamarec` command, one line each. Groups get their summary here. */
import type { CommandSpec, GroupSpec } from "../registry.js";
import { configShowCommand } from "./config-show.js";
import { dataPrepareCommand } from "./data-prepare.js";
import { dataStatsCommand } from "./data-stats.js";
import { evalRunCommand } from "./eval-run.js";
import { metricsCommand } from "./metrics.js";
import { modelInfoCommand } from "./model-info.js";
import { rankCommand } from "./rank.js";
import { reportCommand } from "./report.js";
import { runCommand } from "./run.js";
import { serveCommand } from "./serve.js";
import { trainRankerCommand } from "./train-ranker.js";
import { trainRetrieverCommand } from "./train-retriever.js";

export const GROUPS: readonly GroupSpec[] = [
  { name: "data", summary: "inspect and prepare datasets" },
  { name: "train", summary: "train the retriever or the ranker" },
  { name: "model", summary: "inspect model files" },
  { name: "config", summary: "check configuration files" },
];

export const COMMANDS: readonly CommandSpec[] = [
  dataStatsCommand,
  dataPrepareCommand,
  metricsCommand,
  configShowCommand,
  trainRetrieverCommand,
  evalRunCommand,
  trainRankerCommand,
  rankCommand,
  reportCommand,
  modelInfoCommand,
  serveCommand,
  runCommand,
];
