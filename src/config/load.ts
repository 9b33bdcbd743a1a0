/**
 * Reading a config file (YAML or JSON), overlaying command-line flags (flags win), and validating the
 * result against every registered section. Errors name the field and where its value came from:
 *   config.yaml: data.minRating: expected number, got "five"
 *   --min-uc: expected integer, got 2.5
 */
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { InputError } from "../util/errors.js";
import { configSchema, type ResolvedConfig } from "./sections.js";

export type RawConfig = Record<string, unknown>;

export async function readConfigFile(path: string): Promise<RawConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new InputError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  return parseConfigText(text, path);
}

export function parseConfigText(text: string, file: string): RawConfig {
  let value: unknown;
  try {
    value = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    const first = (err as Error).message.split("\n")[0];
    throw new InputError(`${file}: not valid ${file.endsWith(".json") ? "JSON" : "YAML"}: ${first}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new InputError(
      `${file}: expected a mapping of sections (data:, eval:, ...), got ${describe(value)}`,
    );
  }
  return value as RawConfig;
}

/** A value from a flag, placed at a dotted config path ("data.minRating"), named by the flag in errors. */
export interface FlagValue {
  path: string;
  value: unknown;
  flag: string;
}

export interface ConfigSources {
  file?: { path: string; config: RawConfig };
  flags?: readonly FlagValue[];
}

export function resolveConfig(sources: ConfigSources): ResolvedConfig {
  const merged: RawConfig = structuredClone(sources.file?.config ?? {});
  const flagAt = new Map<string, string>();
  for (const f of sources.flags ?? []) {
    if (f.value === undefined) continue;
    setPath(merged, f.path, f.value);
    flagAt.set(f.path, f.flag);
  }
  const result = configSchema().safeParse(merged);
  if (result.success) return result.data;
  const fileLabel = sources.file ? basename(sources.file.path) : "config";
  const messages = result.error.issues.map((issue) => formatIssue(issue, merged, fileLabel, flagAt));
  throw new InputError(messages.join("\n"));
}

export function setPath(target: RawConfig, dotted: string, value: unknown): void {
  const keys = dotted.split(".");
  let node: RawConfig = target;
  keys.slice(0, -1).forEach((key) => {
    const next = node[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as RawConfig;
  });
  node[keys[keys.length - 1]!] = value;
}

function getPath(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const key of path) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  if (typeof value === "object") return "a mapping";
  return String(value);
}

function formatIssue(
  issue: z.core.$ZodIssue,
  root: RawConfig,
  fileLabel: string,
  flagAt: ReadonlyMap<string, string>,
): string {
  const dotted = formatPath(issue.path);
  const where = (path: string) => {
    const flag = flagAt.get(path);
    return flag ? flag : `${fileLabel}: ${path}`;
  };
  const got = describe(getPath(root, issue.path));
  switch (issue.code) {
    case "unrecognized_keys": {
      const base = dotted === "" ? "" : `${dotted}.`;
      const known = knownKeys(configSchema(), issue.path);
      const hint = known.length > 0 ? ` (known: ${known.join(", ")})` : "";
      const kind = dotted === "" ? "section" : "field";
      return issue.keys.map((k) => `${fileLabel}: ${base}${k}: unknown ${kind}${hint}`).join("\n");
    }
    case "invalid_type": {
      const expected = TYPE_WORDS[issue.expected] ?? issue.expected;
      return `${where(dotted)}: expected ${expected}, got ${got}`;
    }
    case "invalid_value":
      return `${where(dotted)}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${got}`;
    case "too_small":
    case "too_big": {
      const small = issue.code === "too_small";
      const bound = small ? issue.minimum : issue.maximum;
      const op = `${small ? ">" : "<"}${issue.inclusive ? "=" : ""}`;
      if (issue.origin === "array")
        return `${where(dotted)}: expected ${small ? "at least" : "at most"} ${bound} items`;
      if (issue.origin === "string")
        return `${where(dotted)}: expected ${small ? "at least" : "at most"} ${bound} characters, got ${got}`;
      return `${where(dotted)}: expected a number ${op} ${bound}, got ${got}`;
    }
    default:
      return `${where(dotted)}: ${issue.message}`;
  }
}

const TYPE_WORDS: Record<string, string> = { int: "integer", object: "a mapping", array: "a list" };

/** data.columns.user, eval.ks[1] */
function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** Field names the schema accepts at `path`, for "unknown field" hints (best effort). */
function knownKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let node: unknown = schema;
  const unwrap = (s: unknown): unknown => {
    let cur = s as { _zod?: { def?: { innerType?: unknown; type?: string } } };
    while (cur?._zod?.def?.innerType) cur = cur._zod.def.innerType as typeof cur;
    return cur;
  };
  for (const key of [...path, null]) {
    node = unwrap(node);
    const shape = (node as { shape?: Record<string, unknown> })?.shape;
    if (!shape) return [];
    if (key === null) return Object.keys(shape);
    node = shape[String(key)];
  }
  return [];
}
