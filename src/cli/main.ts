#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { COMMANDS, GROUPS } from "./commands/index.js";
import { runCli } from "./program.js";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  version: string;
};
const code = await runCli(process.argv.slice(2), COMMANDS, GROUPS, process, pkg.version);
process.exitCode = code;
