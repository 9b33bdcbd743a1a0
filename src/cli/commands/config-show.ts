/**
 * `llamarec config show`: validate a config file and print every section with its defaults filled in,
 * as YAML (or JSON) — a complete file to start from or to store beside results.
 */
import { stringify } from "yaml";
import { sectionNames, sectionOf } from "../../config/sections.js";
import type { CommandSpec } from "../registry.js";

export const configShowCommand: CommandSpec = {
  path: ["config", "show"],
  summary: "validate --config and print all sections with defaults applied",
  configure(cmd) {
    cmd.option("--json", "print JSON instead of YAML");
  },
  async run(ctx) {
    const resolved: Record<string, unknown> = {};
    for (const name of sectionNames()) resolved[name] = sectionOf(name)!.get(ctx.config);
    ctx.out.write(ctx.opts.json ? `${JSON.stringify(resolved, null, 2)}\n` : stringify(resolved));
  },
};
