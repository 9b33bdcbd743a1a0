/**
 * `llamarec config show`: validate a config file and print every section with its defaults filled in,
 * as YAML (or JSON) — a complete file to start from or to store beside results. Fields without a default
 * that the file does not set are listed as YAML comments (`# lr:`), so every key can be discovered.
 */
import { stringify } from "yaml";
import { sectionNames, sectionOf } from "../../config/sections.js";
import type { CommandSpec } from "../registry.js";

/** The field names of a section's object schema (zod 4: `.shape`, possibly behind a pipe/default). */
function fieldNames(schema: unknown): string[] {
  let s = schema as { shape?: Record<string, unknown>; def?: { in?: unknown; innerType?: unknown } };
  for (let depth = 0; depth < 4 && s && !s.shape; depth++) s = (s.def?.in ?? s.def?.innerType) as typeof s;
  return s?.shape ? Object.keys(s.shape) : [];
}

export const configShowCommand: CommandSpec = {
  path: ["config", "show"],
  summary: "validate --config and print all sections with defaults applied (unset keys as comments)",
  configure(cmd) {
    cmd.option("--json", "print JSON instead of YAML (without the unset keys)");
  },
  async run(ctx) {
    const resolved: Record<string, unknown> = {};
    for (const name of sectionNames()) resolved[name] = sectionOf(name)!.get(ctx.config);
    if (ctx.opts.json) {
      ctx.out.write(`${JSON.stringify(resolved, null, 2)}\n`);
      return;
    }
    let text = "";
    for (const name of sectionNames()) {
      const value = (resolved[name] ?? {}) as Record<string, unknown>;
      const unset = fieldNames(sectionOf(name)!.schema).filter((k) => value[k] === undefined);
      text += Object.keys(value).length === 0 ? `${name}: {}\n` : stringify({ [name]: value }, { indent: 2 });
      for (const key of unset) text += `  # ${key}:\n`;
    }
    ctx.out.write(text);
  },
};
