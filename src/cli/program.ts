/**
 * Builds the `llamarec` command tree from CommandSpecs and runs it with the CLI's error contract:
 * InputError -> one clean message on stderr, exit 2; usage errors -> commander's message, exit 2;
 * anything else -> the stack, exit 1.
 */
import { Command, CommanderError, Help } from "commander";
import { type FlagValue, readConfigFile, resolveConfig } from "../config/load.js";
import { InputError } from "../util/errors.js";
import { setLogLevel, setLogSink } from "../util/log.js";
import type { CommandSpec, GroupSpec } from "./registry.js";

export interface CliIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export const EXIT_OK = 0;
export const EXIT_UNEXPECTED = 1;
export const EXIT_INPUT = 2;

export function buildProgram(
  commands: readonly CommandSpec[],
  groups: readonly GroupSpec[],
  io: CliIO,
  version: string,
): Command {
  const program = new Command("llamarec")
    .description("LlamaRec: two-stage sequential recommendation (LRURec retrieval + Llama ranking)")
    .version(version)
    .option("-c, --config <file>", "YAML or JSON config file (flags override its fields)")
    .option("-q, --quiet", "only print warnings and errors")
    .option("-v, --verbose", "print debug messages")
    .showHelpAfterError("(add --help for usage)");
  configureIO(program, io);

  const groupSummary = new Map(groups.map((g) => [g.name, g.summary]));
  for (const spec of commands) {
    let parent = program;
    for (const name of spec.path.slice(0, -1)) {
      let group = parent.commands.find((c) => c.name() === name);
      if (!group) {
        group = parent.command(name).description(groupSummary.get(name) ?? "");
        configureIO(group, io);
      }
      parent = group;
    }
    const cmd = parent.command(spec.path[spec.path.length - 1]!).summary(spec.summary);
    cmd.description(spec.description ?? spec.summary);
    configureIO(cmd, io);
    spec.configure?.(cmd);
    cmd.action(async () => {
      const opts = cmd.optsWithGlobals() as Record<string, unknown>;
      if (opts.quiet) setLogLevel("warn");
      if (opts.verbose) setLogLevel("debug");
      const configPath = opts.config as string | undefined;
      const file = configPath ? { path: configPath, config: await readConfigFile(configPath) } : undefined;
      const config = resolveConfig({ file, flags: flagValues(cmd, spec) });
      await spec.run({
        // A variadic last argument (`<runs...>`) takes every remaining word.
        args: cmd.registeredArguments.at(-1)?.variadic
          ? cmd.args
          : cmd.args.slice(0, cmd.registeredArguments.length),
        opts,
        config,
        out: io.stdout,
      });
    });
  }
  return program;
}

const defaultHelp = new Help();

function configureIO(cmd: Command, io: CliIO): void {
  cmd.exitOverride();
  // Our option texts state their defaults in words ("(default runs)"); commander would add a second
  // '(default: "runs")'. Keep commander's only for options whose text does not mention a default.
  cmd.configureHelp({
    optionDescription: (option) =>
      /\(default\b/.test(option.description) ? option.description : defaultHelp.optionDescription(option),
  });
  cmd.configureOutput({
    writeOut: (s) => io.stdout.write(s),
    writeErr: (s) => io.stderr.write(s),
  });
}

/** Only flags actually typed on the command line override the config file (not commander defaults). */
function flagValues(cmd: Command, spec: CommandSpec): FlagValue[] {
  const out: FlagValue[] = [];
  for (const [attr, path] of Object.entries(spec.configFlags ?? {})) {
    const source = cmd.getOptionValueSource(attr);
    if (source !== "cli" && source !== "env") continue;
    const option = cmd.options.find((o) => o.attributeName() === attr);
    out.push({ path, value: cmd.getOptionValue(attr), flag: option?.long ?? `--${attr}` });
  }
  return out;
}

/** Runs the CLI and returns the exit code (never calls process.exit, so tests can call it). */
export async function runCli(
  argv: readonly string[],
  commands: readonly CommandSpec[],
  groups: readonly GroupSpec[],
  io: CliIO,
  version = "0.0.0",
): Promise<number> {
  const previousSink = setLogSink(io.stderr);
  try {
    const program = buildProgram(commands, groups, io, version);
    if (argv.length === 0) {
      program.outputHelp();
      return EXIT_OK;
    }
    await program.parseAsync([...argv], { from: "user" });
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed its message, or the help / version text (exit code 0). A group
      // without its subcommand (`llamarec data`) prints help as a usage error.
      return err.exitCode === 0 ? EXIT_OK : EXIT_INPUT;
    }
    if (err instanceof InputError) {
      io.stderr.write(`error: ${err.message}\n`);
      return EXIT_INPUT;
    }
    io.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT_UNEXPECTED;
  } finally {
    setLogSink(previousSink);
    setLogLevel("info");
  }
}
