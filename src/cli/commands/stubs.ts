/**
 * Placeholders for pipeline stages whose modules are still being built. Each is one line here so
 * `llamarec --help` shows the whole tree; replacing a stub means pointing its line in commands/index.ts
 * at the real module.
 */
import { InputError } from "../../util/errors.js";
import type { CommandSpec } from "../registry.js";

export function plannedCommand(path: readonly string[], summary: string, usage = ""): CommandSpec {
  return {
    path,
    summary: `${summary} (not available yet)`,
    configure(cmd) {
      if (usage) cmd.argument(usage);
      cmd.allowUnknownOption().allowExcessArguments();
    },
    async run() {
      throw new InputError(`\`llamarec ${path.join(" ")}\` is not implemented in this version yet`);
    },
  };
}
