/** Runs the CLI in-process and captures stdout, stderr and the exit code. */
import { COMMANDS, GROUPS } from "../../src/cli/commands/index.js";
import { runCli } from "../../src/cli/program.js";
import type { CommandSpec } from "../../src/cli/registry.js";

export function sink(): { stream: NodeJS.WritableStream; text: () => string } {
  let text = "";
  const stream = {
    write(s: string) {
      text += s;
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  return { stream, text: () => text };
}

export async function runCaptured(argv: string[], extra: readonly CommandSpec[] = []) {
  const out = sink();
  const err = sink();
  const code = await runCli(argv, [...COMMANDS, ...extra], GROUPS, {
    stdout: out.stream,
    stderr: err.stream,
  });
  return { code, out: out.text(), err: err.text() };
}
