/**
 * A CLI command is one module exporting a CommandSpec; commands/index.ts lists them, one line each.
 * Groups ("data", "train", "model") are created from the paths, so `train ranker` only needs its file.
 */
import type { Command } from "commander";
import type { ResolvedConfig } from "../config/sections.js";

export interface CommandContext {
  /** Positional arguments, in declaration order. */
  args: string[];
  /** This command's options plus the global ones (--config, --quiet, --verbose). */
  opts: Record<string, unknown>;
  /** Config file + flags, validated by every registered section. */
  config: ResolvedConfig;
  /** Where results go (tables, JSON); logs and progress go to stderr. */
  out: NodeJS.WritableStream;
}

/** A flag that overrides a config field: commander attribute name -> dotted config path. */
export type ConfigFlags = Readonly<Record<string, string>>;

export interface CommandSpec {
  /** e.g. ["data", "stats"]. */
  path: readonly string[];
  summary: string;
  /** Longer text shown under --help. */
  description?: string;
  /** Declares arguments and options on the commander command. */
  configure?(cmd: Command): void;
  /** Flags that override config fields (flags win over the file). */
  configFlags?: ConfigFlags;
  run(ctx: CommandContext): Promise<void>;
}

export interface GroupSpec {
  name: string;
  summary: string;
}
